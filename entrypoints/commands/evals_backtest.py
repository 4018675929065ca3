"""`quorum evals backtest` and the `backtest` suite of `quorum evals run`: Quorum, its rules-only and no-memory
ablations and rule-based baselines over the last months of a data directory, net of costs
(`application.evals.backtest_eval`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from dependency_injector import providers
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.universe_file import read_universes
from application.backtest import BacktestResult
from application.dividends import DividendVenue
from application.evals.backtest_eval import EvalParameters, PipelineRun, Pipelines, evaluate_backtest
from application.membership import survivorship
from domain.market_conditions import BENCHMARK
from domain.ports.embedder import Embedder
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.backtest import choose_symbols
from entrypoints.commands.options import check_data_dirs
from entrypoints.container import build_container, close_container
from entrypoints.settings import LLMSettings, Settings
from entrypoints.wiring.venue import NOT_STOCKS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = (ROOT / "data" / "daily" / "sp500_2013_2018", ROOT / "data" / "daily" / "context")
MODELS = ("signal_model", "risk_model", "validator_model", "picker_model")
EMBEDDERS = ("hashing", "model")
SuiteProgress = Callable[[str, int, int], None]
"""(what, done, total): the run under way and its sessions done."""
err = Console(stderr=True)


def llm_settings(settings: Settings, llm: str) -> Settings:
    """`settings` with every LLM stage on `llm`: "offline" (the rules), "settings" (as configured) or a litellm
    model string.

    Raises:
        ValueError: an unknown model.
    """
    if llm == "settings":
        return settings
    try:
        LLMSettings.model_validate({"signal_model": llm})
    except ValidationError as exc:
        raise ValueError(f"--llm must be 'offline', 'settings' or a litellm model with a provider prefix, got "
                         f"{llm!r}") from exc
    return settings.model_copy(update={"llm": settings.llm.model_copy(update=dict.fromkeys(MODELS, llm))})


def offline(settings: Settings) -> bool:
    """Whether every LLM stage of `settings` is the offline policy."""
    return all(getattr(settings.llm, m) == "offline" for m in MODELS)


def window_of(history: DailyBarMarketData, months: int) -> tuple[date, date]:
    """The last `months` months (30.44 days each) of the data, ending on the last day with stock bars (or SPY's
    last day, when SPY ends earlier).

    Raises:
        ValueError: the data has no stock.
    """
    ends = [b.days[-1] for s in history.symbols if s not in NOT_STOCKS and (b := history.series(s)) is not None
            and len(b)]
    if not ends:
        raise ValueError("the data has no stock with daily bars")
    last = max(ends)
    spy = history.series(BENCHMARK)
    if spy is not None and len(spy):
        last = min(last, spy.days[-1])
    return last - timedelta(days=round(months * 30.44)), last


@dataclass(frozen=True)
class _Run:
    """One backtest of the suite, with what the eval needs from its container."""

    pipeline: PipelineRun
    dividends: dict[str, dict[date, Decimal]] | None


@dataclass(frozen=True)
class _Plan:
    """What every run of the suite shares."""

    data_dirs: list[Path]
    first: date
    last: date
    closed_at: datetime
    symbols: list[str]
    cash: Decimal
    seed: int
    history: DailyBarMarketData
    embedder: Embedder | None


async def _backtest(plan: _Plan, name: str, settings: Settings, *, memory_recall: bool,
                    progress: SuiteProgress | None) -> _Run:
    """One backtest of the suite on the shared history, in memory; its cassettes (if any) in a subdirectory of its
    own, so a replay of one pipeline never gets the answer another pipeline recorded for the same prompt."""
    scope = f"evals-backtest:{name}"
    if settings.llm.replay_dir is not None:
        settings = settings.model_copy(update={"llm": settings.llm.model_copy(
            update={"replay_dir": settings.llm.replay_dir / name})})
    container = build_container(settings, "backtest", storage="memory", scope=scope, start=plan.first,
                                end=plan.last, cash=plan.cash, seed=plan.seed, n_symbols=len(plan.symbols),
                                data_dirs=plan.data_dirs, memory_recall=memory_recall)
    container.history.override(providers.Object(plan.history))
    if plan.embedder is not None:
        container.embedder.override(providers.Object(plan.embedder))
    container.run.symbols.from_value(plan.symbols)

    def sessions(i: int, total: int, day: date, equity: Decimal) -> None:
        if progress is not None:
            progress(name, i, total)

    try:
        result = await container.backtest_runner().run(run_id=f"evals-backtest-{name}", start=plan.first,
                                                       end=plan.last, symbols=plan.symbols, progress=sessions)
        tz = container.calendar().tz
        async with container.uow_factory()() as uow:
            calls = await uow.llm_calls.list(scope, limit=1_000_000)
        by_day: dict[date, Decimal] = {}
        for c in calls:
            day = c.at.astimezone(tz).date()
            by_day[day] = by_day.get(day, Decimal(0)) + Decimal(str(c.cost_usd))
        result.extra["embedding_model"] = container.embedder().model_name
        venue = container.simulated_venue()
        dividends = ({s: dict(venue.dividends_of(s)) for s in {*plan.symbols, BENCHMARK}}
                     if result.dividends.counted and isinstance(venue, DividendVenue) else None)
    finally:
        await close_container(container)
    return _Run(PipelineRun(result, by_day), dividends)


def shown(path: Path) -> str:
    """`path` relative to the checkout when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(resolved)


def _describe(result: BacktestResult, plan: _Plan) -> None:
    result.extra["data"] = "replay of " + ", ".join(shown(d) for d in plan.data_dirs)
    result.extra["survivorship"] = survivorship(read_universes(plan.data_dirs)).to_json()


async def _plan(settings: Settings, data_dirs: list[Path], months: int, n_symbols: int, seed: int,
                embedder: str) -> _Plan:
    """The window, the symbols (the most liquid before it, as `quorum backtest` chooses), the history and the
    embedder, loaded once for every run."""
    probe = build_container(settings, "backtest", storage="memory", data_dirs=data_dirs)
    try:
        history = probe.history()
        first, last = window_of(history, months)
        chosen = await choose_symbols(probe, read_universes(data_dirs), first, n_symbols)
        if not chosen:
            raise ValueError(f"no stock has 60 days of history before {first}")
        calendar = probe.calendar()
        sessions = calendar.sessions(first, last)
        if not sessions:
            raise ValueError(f"no session between {first} and {last}")
        model = build_container(settings, "backtest").embedder() if embedder == "model" else None
        return _Plan(data_dirs, first, last, calendar.session_close(sessions[-1]), chosen,
                     settings.risk.starting_capital, seed, history, model)
    finally:
        await close_container(probe)


async def backtest_suite(settings: Settings, *, data_dirs: list[Path], llm: str, months: int, symbols: int,
                         seed: int, progress: SuiteProgress | None = None, embedder: str = "hashing",
                         params: EvalParameters | None = None) -> dict[str, Any]:
    """Quorum on `llm`, its rules-only ablation (unless Quorum is already offline) and its no-memory ablation
    over the last `months` months of `data_dirs` on the `symbols` most liquid stocks before the window, then
    every baseline; the dict of `application.evals.backtest_eval.evaluate_backtest`. Storage is in memory; the
    trade memory embeds with the hashing embedder, or with the configured sentence-transformers model when
    `embedder` is "model" (what live trading uses; slower).

    Raises:
        ValueError: an unknown model or embedder, or data without stocks or enough history.
    """
    if embedder not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {', '.join(EMBEDDERS)}, got {embedder!r}")
    evaluated = llm_settings(settings, llm)
    plan = await _plan(evaluated, data_dirs, months, symbols, seed, embedder)
    quorum = await _backtest(plan, "quorum", evaluated, memory_recall=True, progress=progress)
    rules = (None if offline(evaluated) else
             await _backtest(plan, "rules_only", llm_settings(settings, "offline"), memory_recall=True,
                             progress=progress))
    no_memory = await _backtest(plan, "no_memory", evaluated, memory_recall=False, progress=progress)
    for r in (quorum, rules, no_memory):
        if r is not None:
            _describe(r.pipeline.result, plan)
    bars = await plan.history.daily_bars([*plan.symbols, BENCHMARK], as_of=plan.closed_at, lookback=100_000)
    report = evaluate_backtest(
        Pipelines(quorum.pipeline, rules.pipeline if rules else None, no_memory.pipeline, llm=llm), bars,
        fees=evaluated.risk.fees, dividends=quorum.dividends, params=params or EvalParameters(seed=seed))
    report["window"] |= {"months": months, "seed": seed, "data_dirs": [shown(d) for d in data_dirs],
                         "requested_symbols": symbols}
    return report


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:+.2%}"


def _two(v: Any) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _interval(ci: dict[str, Any] | None) -> str:
    if not ci or ci.get("low") is None or ci.get("high") is None:
        return "n/a"
    return f"[{ci['low']:+.2f}, {ci['high']:+.2f}]"


def table(report: dict[str, Any]) -> Table:
    """One row per strategy: return, Sharpe, max drawdown, PSR, Sharpe interval and the verdict against Quorum."""
    w = report["window"]
    t = Table(title=f"Backtest eval {w['start']} → {w['end']} ({w['sessions']} sessions, {len(w['symbols'])} "
                    f"symbols, LLM {w['llm']})")
    for col in ("strategy", "return", "Sharpe", "max DD", "PSR", "Sharpe 95 % CI", "verdict vs Quorum"):
        t.add_column(col, justify="left" if col in ("strategy", "verdict vs Quorum") else "right")
    for name, s in report["strategies"].items():
        verdict = report["comparisons"].get(name, {}).get("verdict", "—" if name == "quorum" else "")
        t.add_row(s["name"], _pct(s["total_return"]), _two(s["sharpe"]),
                  "n/a" if s["max_drawdown"] is None else f"{s['max_drawdown']:.2%}",
                  "n/a" if s["psr"] is None else f"{s['psr']:.0%}", _interval(s["sharpe_ci"]), verdict)
    return t


def _check(dirs: list[Path], llm: str, embedder: str) -> None:
    check_data_dirs(dirs)
    if embedder not in EMBEDDERS:
        fail(f"--embedder must be one of {', '.join(EMBEDDERS)}, got {embedder!r}")
    if llm not in ("offline", "settings") and "/" not in llm:
        fail(f"--llm must be 'offline', 'settings' or a litellm model with a provider prefix, got {llm!r}")


def backtest(
    data: list[Path] = typer.Option([], "--data", help="directory of daily OHLCV CSVs (repeatable; default: the "
                                    "shipped data/daily/sp500_2013_2018 and data/daily/context)"),
    months: int = typer.Option(12, "--months", min=1, max=120, help="the last N months of the data"),
    symbols: int = typer.Option(10, "--symbols", min=1, max=500, help="how many symbols Quorum trades"),
    llm: str = typer.Option("offline", "--llm", help="'offline', 'settings' or a litellm model for every stage"),
    seed: int = typer.Option(7, "--seed", help="seed of the random entries and the bootstrap"),
    embedder: str = typer.Option("hashing", "--embedder", help="what embeds the trade memory: 'hashing' (fast) or "
                                 "'model' (the configured sentence-transformers model, as live trading)"),
    as_json: bool = typer.Option(False, "--json", help="print the whole result as JSON"),
) -> None:
    """Quorum against SPY and per-symbol buy-and-hold, SMA cross, momentum, random entries and its rules-only and
    no-memory ablations over the last months of the data, net of fees and LLM cost."""
    dirs = list(data) or list(DEFAULT_DATA)
    _check(dirs, llm, embedder)
    settings, _ = start("backtest", params={"storage": "memory"}, env="backtest")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        try:
            report = run(backtest_suite(settings, data_dirs=dirs, llm=llm, months=months, symbols=symbols, seed=seed,
                                        progress=progress, embedder=embedder))
        except ValueError as exc:
            fail(str(exc), 1)
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
        return
    Console().print(table(report))
    for note in report["notes"]:
        typer.echo(f"- {note}")
