"""The tearsheet's text sections: the display currency, dividends and survivorship, the circuit breaker, the
invariants of a rehearsal, the settings the run used, and every summary.json field as written."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Any

from adapters.reports.tearsheet_format import pct, raw, text
from adapters.reports.tearsheet_sections import table

SECRET_ENDINGS = ("key", "password", "secret", "token")
URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")
SETTING_GROUPS = {"risk": "Risk", "llm": "LLM", "discovery": "Discovery", "broker": "Broker"}
APPENDIX_KEYS = ("run_id", "scope", "start", "end", "sessions", "starting_cash", "final_equity", "total_return",
                 "annualized_return", "sharpe", "sortino", "max_drawdown", "win_rate", "profit_factor", "exposure",
                 "alpha", "beta", "round_trips", "fills", "fees", "llm_cost_usd", "total_return_net_of_llm",
                 "failed_cycles")
BENCHMARK_TERMS = ("The benchmarks buy at the first session's open plus the run's slippage, pay the run's fees, "
                   "are held to the end and receive dividends only when Quorum does.")


def currency_html(shown: Mapping[str, Any] | None) -> str:
    """The money figures in the display currency, or why they are not shown; "" for USD."""
    if not shown:
        return ""
    if "rate" not in shown:
        return f"<p>{text(shown['currency'])} not shown: {text(shown.get('problem'))}</p>"
    r, cur = shown["rate"], text(shown["currency"])
    return (f"<p>In {cur} at {text(r['rate'])} per USD ({text(r['source'])}, {text(r['date'])}): starting "
            f"cash {text(shown['starting_cash'])} {cur}, final equity {text(shown['final_equity'])} "
            f"{cur}, fees {text(shown['fees'])} {cur}. The account trades in USD.</p>")


def honesty_html(summary: Mapping[str, Any]) -> str:
    """Whether dividends were counted (for everyone or nobody) and the survivorship statement."""
    div, surv = summary.get("dividends") or {}, summary.get("survivorship") or {}
    counted = "counted" if div.get("counted") else "not counted"
    return (f"<h2 id='honesty'>Dividends and survivorship</h2><p>Dividends {counted}: "
            f"{text(div.get('reason', 'unknown'))} (credited to Quorum: {text(div.get('credited', '0'))} USD).</p>"
            f"<p>{text(surv.get('statement', ''))}</p><p>{html.escape(BENCHMARK_TERMS)}</p>")


def breaker_html(b: Mapping[str, Any] | None) -> str:
    """The breaker's resume policy, shadow periods, trips and resumes."""
    if not b:
        return ""
    rows = [f"<tr><td>tripped</td><td>{text(t['at'])}</td><td>{text(t['trigger'])}: {text(t['reason'])}</td></tr>"
            for t in b["trips"]]
    rows += [f"<tr><td>resumed</td><td>{text(r['at'])}</td><td>approved by {text(r['by'])}</td></tr>"
             for r in b["resumes"]]
    periods = ", ".join(f"{p['from']} → {p['to']} ({p['sessions']} sessions{', still open' if p.get('open') else ''})"
                        for p in b["shadow_periods"]) or "none"
    events = table(["", "When", "What"], rows, "text") if rows else "<p>The breaker never tripped.</p>"
    return (f"<h2 id='breaker'>Circuit breaker</h2><p>Resume policy of this simulation: "
            f"<b>{text(b['resume_policy'])}</b>. Shadow (halted) periods: {html.escape(periods)}; "
            f"{text(b['shadow_sessions'])} sessions, {pct(b['halted_share'], digits=0)} of the run. In shadow mode "
            "new entries are simulated on a shadow book instead of sent; exits of held positions stay real. The "
            f"charts shade these periods.</p>{events}")


def invariants_html(inv: Mapping[str, Any] | None) -> str:
    """The rehearsal's invariant checks and their violations."""
    if not inv:
        return ""
    rows = [f"<tr><td>{text(v['at'])}</td><td>{text(v['rule'])}</td><td>{text(v['evidence'])}</td></tr>"
            for v in inv["violations"]]
    verdict = "all held" if not inv["violations"] else f"{len(inv['violations'])} violations"
    return (f"<h2 id='invariants'>Invariants</h2><p>{text(inv['checked'])} checks: {verdict}.</p>"
            + (table(["When", "Rule", "Evidence"], rows, "text") if rows else ""))


def masked(settings: Any, key: str = "") -> Any:
    """`settings` with the values of keys that name a secret (API keys, passwords, tokens) replaced by "***", and
    the credentials in URLs too."""
    if isinstance(settings, Mapping):
        return {k: masked(v, str(k)) for k, v in settings.items()}
    if isinstance(settings, list):
        return [masked(v, key) for v in settings]
    if settings not in (None, "") and key.lower().endswith(SECRET_ENDINGS):
        return "***"
    if isinstance(settings, str):
        return URL_CREDENTIALS.sub("://***@", settings)
    return settings


def _flat(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix, value)]


def _setting(value: Any) -> str:
    return text(json.dumps(value) if isinstance(value, (list, bool)) else value)


def settings_html(settings: Mapping[str, Any]) -> str:
    """The risk, LLM, discovery and broker settings as tables, and every setting as JSON (secrets masked)."""
    shown = masked(settings)
    tables = [table([SETTING_GROUPS[group], ""], [f"<tr><th>{html.escape(k.removeprefix(group + '.'))}</th>"
                                               f"<td>{_setting(v)}</td></tr>" for k, v in _flat(shown[group], group)],
                    "settings text")
              for group in SETTING_GROUPS if isinstance(shown.get(group), Mapping)]
    return (f"<h2 id='settings'>Settings used</h2><div class='two'>{''.join(tables)}</div><details><summary>Every "
            f"setting (JSON)</summary><pre>{html.escape(json.dumps(shown, indent=2, default=str))}</pre></details>")


def appendix_html(summary: Mapping[str, Any]) -> str:
    """The headline fields of summary.json under their own names, as written (fractions, not percentages)."""
    rows = "".join(f"<tr><th>{k}</th><td>{raw(summary.get(k))}</td></tr>" for k in APPENDIX_KEYS if k in summary)
    return (f"<details id='fields'><summary>summary.json fields (raw: fractions, not percentages)</summary>"
            f"<table class='raw'>{rows}</table><p>round_trips: trades from flat to flat (win rate over them); "
            "fills: executions.</p></details>")
