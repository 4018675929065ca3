"""LLM cost of a trading day: `quorum rehearse` on the live schedule against a local OpenAI-compatible server.

Issue #15 items 1 and 5. Each profile rehearses the same sessions (every cycle of the day: 09:35 ET then every
30 minutes, 13 a session, the event cycles the data triggers, discovery with the LLM picker, the after-close
jobs) with every agent (signal, risk, validator, picker) on `openai/gpt-4o-mini` at a local server started here
(`bench._llm_stub`): it answers valid, varied JSON for each agent and counts each request's prompt (messages and
`response_format`) and completion tokens with litellm's tokenizer. From the tokens per trading day per agent,
USD per day at the list prices of `PRICES`. Profiles, measured in the same run, each in its own process:

- `baseline`: today's behaviour (`baseline_overrides`: the settings that turn the new optimisations off);
- `current`: the default settings (the figure).

Warm-up sessions before the measured ones fill the memory (similar trades and market conditions) as a running
system has it; their calls are not counted. A call belongs to the session of its context's `as_of` (an
overnight call to the next session). The daily cap is lifted so that it never hides what the schedule asks.
The chat is user-driven, so it is measured on an assumption: after each session's close the operator asks the
five questions of `bench._chat_answers.DAILY_SCRIPT` in one conversation, through the real chat (`ChatAssistant`
on `LiteLLMChat` and the real tools, `bench._chat_turns`); the server answers each with tool calls, then a short
answer. Its row is reported beside the agents, outside `usd_per_day` (the target) and inside
`usd_per_day_with_chat`.

Usage: `python -m bench.llm_cost [--sessions N] [--warmup N] [--symbols N] [--data shipped|fixtures|intraday]`
(environment: BENCH_LLM_COST_SESSIONS, BENCH_LLM_COST_WARMUP, BENCH_LLM_COST_SYMBOLS, BENCH_LLM_COST_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._llm_cost_report import ProfileRun, aggregate, chat_details, print_table, usd
from bench._llm_stub import TOKENIZER_MODEL, LLMStubServer
from bench.common import Target, write_result

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@dataclass(frozen=True)
class DataSet:
    """Bars to rehearse on, the first measured session and how many stocks to list."""

    dirs: tuple[Path, ...]
    first_measured: date
    symbols: int


DATA = {
    "shipped": DataSet((ROOT / "data/daily/sp500_2013_2018", ROOT / "data/daily/context"), date(2016, 3, 14), 20),
    "fixtures": DataSet((ROOT / "tests/fixtures/market/daily", ROOT / "tests/fixtures/market/context"),
                        date(2016, 3, 14), 14),
    "intraday": DataSet((SHARED / "intraday/5min_2025-05_2026-03", SHARED / "daily/context"), date(2025, 10, 6), 9),
}
"""shipped: daily bars, 20 stocks (no intraday bars, so no event cycles); fixtures: the tests' 14 stocks;
intraday: 5-minute bars of 9 volatile stocks in ../shared (the event monitor triggers event cycles)."""
DEFAULT_SESSIONS, DEFAULT_WARMUP = 5, 2
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60), "gemini-2.0-flash": (0.10, 0.40),
    "claude-3-5-haiku": (0.80, 4.00), "claude-sonnet-4": (3.00, 15.00)}
"""List prices, USD per million input and output tokens."""
TARGET_MODEL, TARGET_USD_PER_DAY = "claude-3-5-haiku", 0.05
STUB_MODEL = "openai/gpt-4o-mini"
AGENT_MODELS = ("signal_model", "risk_model", "validator_model", "picker_model")
CHILD_TIMEOUT_S = 1800


def baseline_overrides() -> dict[str, Any]:
    """Settings overrides (nested like `Settings`) that give today's behaviour: the new cost optimisations off.

    Only switches the settings actually have are set, so the profile runs before and after they land."""
    from entrypoints.settings import LLMSettings

    wanted = {"reuse_decisions": False, "compact_prompts": False, "compact_evidence": False, "prompt_caching": False}
    fields = LLMSettings.model_fields
    return {"llm": {k: v for k, v in wanted.items() if k in fields}}


def current_overrides() -> dict[str, Any]:
    """The defaults."""
    return {}


PROFILES: dict[str, Callable[[], dict[str, Any]]] = {"baseline": baseline_overrides, "current": current_overrides}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def child_settings(profile: str, api_base: str, data_dir: Path) -> Any:
    """The profile's settings: every agent on the local server, the cap lifted, Quorum's files in `data_dir`."""
    from entrypoints.settings import load_settings

    llm = {**{m: STUB_MODEL for m in AGENT_MODELS}, "api_base": api_base, "openai_api_key": "sk-bench-local",
           "daily_cap_usd": 1000.0, "max_retries": 1}
    overrides = _merge({"env": "test", "data_dir": data_dir, "llm": llm, "chat": {"model": STUB_MODEL}},
                       PROFILES[profile]())
    return load_settings(**overrides)


class _KindCounter:
    """Wraps the cycle runner to count the cycles of each kind (scheduled, event...) per day."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.kinds: dict[str, dict[str, int]] = {}

    async def run_cycle(self, *, kind: str = "scheduled", as_of: datetime | None = None, **kw: Any) -> Any:
        result = await self.inner.run_cycle(kind=kind, as_of=as_of, **kw)
        day = result.as_of.date().isoformat()
        self.kinds.setdefault(day, {}).setdefault(kind, 0)
        self.kinds[day][kind] += 1
        return result


async def _rehearse(profile: str, api_base: str, first: date, last: date, data: str, symbols: int,
                    tmp: Path) -> tuple[dict[str, Any], _KindCounter, float, dict[str, Any]]:
    from dependency_injector import providers

    from bench._chat_turns import ChatRehearsal
    from entrypoints.rehearsal import RehearsalOptions

    settings = child_settings(profile, api_base, tmp / "quorum")
    opts = RehearsalOptions(first, last, tmp / "report", DATA[data].dirs, symbols=symbols)
    rehearsal = ChatRehearsal(settings, opts, run_id=f"llmcost-{profile}", storage="memory")
    counter = _KindCounter(rehearsal.container.runner())
    rehearsal.container.runner.override(providers.Object(counter))
    began = time.perf_counter()
    summary = await rehearsal.run()
    return summary, counter, time.perf_counter() - began, rehearsal.chat_log


def _decisions_by_day(report: Path) -> dict[str, dict[str, int]]:
    """day -> "signal action->final decision" (and "REJECTED: <the reason, numbers and tickers as #>") -> count,
    from the rehearsal's decisions.jsonl."""
    out: dict[str, dict[str, int]] = {}
    for line in (report / "decisions.jsonl").read_text().splitlines():
        row = json.loads(line)
        keys = [f"{(row.get('signal') or {}).get('action', '?')}->{row.get('final') or 'none'}"]
        if row.get("final") == "REJECTED":
            keys.append("REJECTED: " + re.sub(r"[A-Z]{1,5}\b|\d+(\.\d+)?", "#", str(row.get("reason", "")))[:70])
        per_day = out.setdefault(str(row.get("day")), {})
        for key in keys:
            per_day[key] = per_day.get(key, 0) + 1
    return out


def _child_main(args: argparse.Namespace) -> None:
    import asyncio

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with tempfile.TemporaryDirectory(prefix=f"quorum-bench-llm-{args.child}-") as tmp:
        summary, counter, seconds, chat_log = asyncio.run(_rehearse(
            args.child, args.api_base, date.fromisoformat(args.first), date.fromisoformat(args.last), args.data,
            args.symbols, Path(tmp)))
        decisions = _decisions_by_day(Path(tmp) / "report")
    keep = {"sessions", "cycles", "failed_cycles", "fills", "round_trips", "llm_cost_usd", "symbols", "final_equity",
            "total_return"} | {k for k in summary if "llm" in k or "reuse" in k or "asked" in k}
    Path(args.out).write_text(json.dumps({
        "profile": args.child, "seconds": round(seconds, 1), "cycles_by_day": counter.kinds,
        "decisions_by_day": decisions, "overrides": PROFILES[args.child](), "chat_log": chat_log,
        "summary": {k: summary[k] for k in sorted(keep) if k in summary}}, default=str))


def plan_sessions(first: date, sessions: int, warmup: int) -> tuple[list[date], list[date]]:
    """The warm-up sessions (just before `first`) and the measured ones (from it)."""
    from adapters.calendar.nyse import NyseCalendar

    calendar = NyseCalendar()
    around = calendar.sessions(first - timedelta(days=3 * warmup + 10), first + timedelta(days=3 * sessions + 10))
    before = [d for d in around if d < first]
    after = [d for d in around if d >= first]
    return before[len(before) - warmup:] if warmup else [], after[:sessions]


def _spawn(profile: str, server: LLMStubServer, first: date, last: date, data: str, symbols: int,
           tmp: Path) -> subprocess.Popen[bytes]:
    """The profile's process; it writes `<profile>.json` (and its stderr to `<profile>.err`) in `tmp`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("QUORUM_", "OPENAI_", "ANTHROPIC_"))}
    env.update({"QUORUM_NO_DOTENV": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    cmd = [sys.executable, "-m", "bench.llm_cost", "--child", profile, "--api-base", server.api_base(profile),
           "--first", first.isoformat(), "--last", last.isoformat(), "--data", data, "--symbols", str(symbols),
           "--out", str(tmp / f"{profile}.json")]
    with (tmp / f"{profile}.err").open("wb") as err:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)


def measure(sessions: int, warmup: int, symbols: int, data: str) -> dict[str, Any]:
    """Rehearse every profile (in parallel processes) against one local server; write bench/results/llm_cost.json."""
    started = datetime.now(UTC)
    if data not in DATA:
        raise ValueError(f"unknown data set {data!r}; use one of {', '.join(DATA)}")
    symbols = symbols or DATA[data].symbols
    warm, measured = plan_sessions(DATA[data].first_measured, sessions, warmup)
    everything = [*warm, *measured]
    runs: dict[str, ProfileRun] = {}
    with LLMStubServer() as server, tempfile.TemporaryDirectory(prefix="quorum-bench-llm-") as name:
        tmp = Path(name)
        procs = {p: _spawn(p, server, everything[0], everything[-1], data, symbols, tmp) for p in PROFILES}
        try:
            for profile, proc in procs.items():
                if proc.wait(timeout=CHILD_TIMEOUT_S) != 0:
                    err = (tmp / f"{profile}.err").read_text()[-3000:]
                    raise RuntimeError(f"profile {profile} failed ({proc.returncode}):\n{err}")
                child = json.loads((tmp / f"{profile}.json").read_text())
                runs[profile] = ProfileRun(profile, child, [r for r in server.records if r.profile == profile])
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        unknown = list(server.unknown)
    result = aggregate(runs, everything, measured, PRICES)
    print_table(result, PRICES, TARGET_MODEL, TARGET_USD_PER_DAY)
    current, baseline = result["current"], result["baseline"]
    target_usd = current["usd_per_day"][TARGET_MODEL]
    base_usd = baseline["usd_per_day"][TARGET_MODEL]
    return write_result(
        "llm_cost",
        figures=current,
        baselines=baseline,
        ratios={f"usd_per_day_{m}": round(current["usd_per_day"][m] / baseline["usd_per_day"][m], 3)
                for m in PRICES if baseline["usd_per_day"][m]},
        targets=[Target(f"usd_per_day_{TARGET_MODEL}", "<=", TARGET_USD_PER_DAY, target_usd, "USD")],
        details={"sessions_measured": [d.isoformat() for d in measured],
                 "sessions_warmup": [d.isoformat() for d in warm], "symbols": symbols, "data": data,
                 "data_dirs": [os.path.relpath(d, ROOT) for d in DATA[data].dirs],
                 "prices_per_million": {m: {"input": p[0], "output": p[1]} for m, p in PRICES.items()},
                 "tokenizer": f"litellm.token_counter(model={TOKENIZER_MODEL!r})", "stub_model": STUB_MODEL,
                 "target": f"<= {TARGET_USD_PER_DAY} USD per trading day at {TARGET_MODEL} prices",
                 "baseline_usd_per_day_target_model": base_usd,
                 "profiles": {p: {"overrides": runs[p].child["overrides"], "seconds": runs[p].child["seconds"],
                                  "summary": runs[p].child["summary"],
                                  "recorded_by_quorum_usd": runs[p].child["summary"].get("llm_cost_usd"),
                                  "counted_here_usd_at_stub_model": round(sum(
                                      usd(r.prompt_tokens, r.completion_tokens, PRICES["gpt-4o-mini"])
                                      for r in runs[p].records), 5)}
                              for p in runs},
                 "chat": chat_details(runs, measured),
                 "unrecognised_requests": unknown[:5]},
        started=started,
    )


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def run(sessions: int | None = None, warmup: int | None = None, symbols: int | None = None,
        data: str | None = None) -> dict[str, Any]:
    """Measure with the arguments, else the BENCH_LLM_COST_* environment, else the defaults."""
    return measure(sessions or _env_int("BENCH_LLM_COST_SESSIONS", DEFAULT_SESSIONS),
                   warmup if warmup is not None else _env_int("BENCH_LLM_COST_WARMUP", DEFAULT_WARMUP),
                   symbols or _env_int("BENCH_LLM_COST_SYMBOLS", 0), data or os.environ.get("BENCH_LLM_COST_DATA")
                   or "shipped")


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module docstring); `--child` is the per-profile process."""
    parser = argparse.ArgumentParser(prog="python -m bench.llm_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--symbols", type=int)
    parser.add_argument("--data", choices=sorted(DATA))
    parser.add_argument("--child", choices=sorted(PROFILES), help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--last", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_main(args)
    else:
        run(args.sessions, args.warmup, args.symbols, args.data)


if __name__ == "__main__":
    main()
