"""Templates that turn an event of the event log into a human-readable alert.

Payload conventions the templates read (every key is optional; a missing number is left out):

- breaker_tripped: trigger, reason (plus any numbers, e.g. drawdown, equity).
- breaker_eligible: drawdown (fraction), win_streak, sharpe_7d.
- large_position_change: side, qty, price, notional, equity, pct_of_equity (fraction), qty_before, qty_after.
- daily_summary: date, equity, pnl, pnl_pct (fraction), trades, wins, losses, fees, llm_cost_usd, exposure_pct.
- system_error: error, kind.
- discovery_divergence: pickers, overlap (fraction), only_in (picker -> symbols).
- watchlist_changed: added, removed (lists of symbols), reasons (symbol -> why), size.
- reconciliation_diff: differences (list of {symbol, field, ours, broker}).
- paper_report: campaign, day, sessions, target_sessions, equity, day_return_pct, spy_day_return_pct,
  campaign_return_pct, spy_campaign_return_pct, fills, round_trips, breaker_events, llm_cost_usd,
  llm_cost_campaign_usd, criteria (list of {name, passed, detail}), met.

Keys ending in `_pct` (or starting with `pct_`) and `drawdown`/`overlap` are fractions (0.05 is 5%),
shown signed when the key names a P&L, return, change or move. Keys that look like secrets
(api key, token, password, webhook, ...) are never shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from domain.events import Event, EventType, Severity
from domain.ports.alerts import Alert

MAX_TITLE = 200
MAX_BODY = 3500
MAX_FIELDS = 20
MAX_FIELD_VALUE = 300
_SECRET_KEY = re.compile(r"(api[_-]?key|secret|password|passwd|token|authorization|webhook|credential)", re.I)
_RANK = {s: i for i, s in enumerate(Severity)}
_FRACTION_KEYS = {"drawdown", "overlap", "jaccard"}
_SIGNED_WORDS = ("pnl", "return", "change", "move")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_fraction_key(key: str) -> bool:
    return key.endswith("_pct") or key.startswith("pct_") or key in _FRACTION_KEYS


def _is_signed_key(key: str) -> bool:
    return any(word in key for word in _SIGNED_WORDS)


def fmt_number(value: Any) -> str:
    """A number for people: Decimals and ints as given, floats with at most 4 decimals."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int | Decimal):
        return str(value)
    return str(value)


def fmt_pct(value: Any, *, signed: bool = True) -> str:
    """A fraction as a percentage with two decimals (0.052 -> "+5.20%", or "5.20%" unsigned); text as is."""
    try:
        return f"{float(value) * 100:{'+' if signed else ''}.2f}%"
    except (TypeError, ValueError):
        return str(value)


def fmt_value(key: str, value: Any) -> str:
    """One payload value as text: fractions as percentages, lists joined, mappings as k=v pairs."""
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt_value(str(k), v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(fmt_value(key, v) for v in value) or "none"
    if _is_fraction_key(key) and not isinstance(value, bool):
        return fmt_pct(value, signed=_is_signed_key(key))
    return fmt_number(value)


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def public_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """`payload` without the entries whose key looks like a secret."""
    return {k: v for k, v in payload.items() if not _SECRET_KEY.search(str(k))}


def _fields(payload: Mapping[str, Any], first: Mapping[str, str] | None = None, *,
            skip: tuple[str, ...] = ()) -> dict[str, str]:
    out = dict(first or {})
    for key, value in public_payload(payload).items():
        if key in skip or _label(key) in out or len(out) >= MAX_FIELDS:
            continue
        out[_label(key)] = fmt_value(key, value)
    return {_clip(k, 60): _clip(v, MAX_FIELD_VALUE) for k, v in list(out.items())[:MAX_FIELDS]}


def _severity(event: Event, floor: Severity) -> Severity:
    got = Severity(event.severity)
    return got if _RANK[got] >= _RANK[floor] else floor


def _alert(event: Event, title: str, body: str, fields: dict[str, str], floor: Severity) -> Alert:
    if event.cycle_id and "Cycle" not in fields and len(fields) < MAX_FIELDS:
        fields["Cycle"] = event.cycle_id
    return Alert(
        type=EventType(event.type).value,
        severity=_severity(event, floor),
        title=_clip(title.strip(), MAX_TITLE),
        body=_clip(body.strip(), MAX_BODY),
        at=event.at,
        fields=fields,
        event_id=event.id,
        dedupe_key=None if event.id is None else f"event:{event.id}",
    )


def _get(p: Mapping[str, Any], key: str, default: str = "?") -> str:
    value = p.get(key)
    return default if value is None else fmt_value(key, value)


def breaker_tripped(event: Event) -> Alert:
    """The circuit breaker tripped: what tripped it, and that a person must approve the resume."""
    p = public_payload(event.payload)
    trigger = str(p.get("trigger") or "unknown").replace("_", " ")
    reason = str(p.get("reason") or event.message)
    body = (f"{reason}\n\nNew entries are blocked; exits and stops still run and decisions continue in shadow "
            "mode. Trading resumes only when the breaker is eligible and a person approves it "
            "(`quorum breaker resume --approve`).")
    fields = _fields(p, {"Trigger": trigger, "Reason": reason}, skip=("trigger", "reason"))
    return _alert(event, f"Circuit breaker tripped: {trigger}", body, fields, Severity.CRITICAL)


def breaker_eligible(event: Event) -> Alert:
    """The shadow record is good enough: the breaker may be resumed by a person."""
    p = public_payload(event.payload)
    first = {"Drawdown": _get(p, "drawdown"), "Win streak": _get(p, "win_streak"),
             "7-day Sharpe": _get(p, "sharpe_7d")}
    body = (f"The shadow book meets the resume conditions: drawdown {first['Drawdown']}, win streak "
            f"{first['Win streak']}, 7-day Sharpe {first['7-day Sharpe']}.\n\nTrading stays blocked until a person "
            "approves it: `quorum breaker resume --approve`.")
    fields = _fields(p, first, skip=("drawdown", "win_streak", "sharpe_7d"))
    return _alert(event, "Circuit breaker eligible to resume", body, fields, Severity.WARNING)


def large_position_change(event: Event) -> Alert:
    """A trade moved a large share of the account."""
    p = public_payload(event.payload)
    symbol = event.symbol or str(p.get("symbol") or "?")
    side = str(p.get("side") or "trade").upper()
    first = {"Symbol": symbol, "Side": side, "Quantity": _get(p, "qty"), "Price": _get(p, "price"),
             "Notional": _get(p, "notional"), "Share of equity": _get(p, "pct_of_equity"),
             "Equity": _get(p, "equity")}
    body = (f"{side} {first['Quantity']} {symbol} at {first['Price']} = {first['Notional']} "
            f"({first['Share of equity']} of equity {first['Equity']}).")
    if "qty_before" in p or "qty_after" in p:
        body += f"\nPosition: {_get(p, 'qty_before')} -> {_get(p, 'qty_after')} shares."
    fields = _fields(p, first, skip=("symbol", "side", "qty", "price", "notional", "pct_of_equity", "equity"))
    return _alert(event, f"Large position change: {side} {symbol}", body, fields, Severity.WARNING)


def daily_summary(event: Event) -> Alert:
    """End-of-day P&L summary."""
    p = public_payload(event.payload)
    day = str(p.get("date") or event.at.date().isoformat())
    first = {"Equity": _get(p, "equity"), "P&L": _get(p, "pnl"), "P&L %": _get(p, "pnl_pct"),
             "Trades": _get(p, "trades", "0")}
    if "wins" in p or "losses" in p:
        first["Wins / losses"] = f"{_get(p, 'wins', '0')} / {_get(p, 'losses', '0')}"
    lines = [f"Equity {first['Equity']}, P&L {first['P&L']} ({first['P&L %']}), {first['Trades']} trades."]
    if "fees" in p or "llm_cost_usd" in p:
        lines.append(f"Costs: fees {_get(p, 'fees', '0')}, LLM {_get(p, 'llm_cost_usd', '0')} USD.")
    if event.message:
        lines.append(event.message)
    fields = _fields(p, first, skip=("date", "equity", "pnl", "pnl_pct", "trades", "wins", "losses"))
    return _alert(event, f"Daily summary {day}: P&L {first['P&L']} ({first['P&L %']})", "\n".join(lines), fields,
                  Severity.INFO)


def paper_report(event: Event) -> Alert:
    """The daily report of a paper campaign: the day against SPY, trades, breaker events, LLM cost, the criteria."""
    p = public_payload(event.payload)
    name, day = str(p.get("campaign") or "?"), str(p.get("day") or event.at.date().isoformat())
    session = f"{_get(p, 'sessions')}/{_get(p, 'target_sessions')}"
    criteria = [c for c in p.get("criteria") or [] if isinstance(c, Mapping)]
    marks = {True: "PASS", False: "FAIL", None: "n/a"}
    table = [f"{marks.get(c.get('passed'), 'n/a'):<4} {c.get('name', '?')}: {c.get('detail', '')}" for c in criteria]
    verdict = "criteria met" if p.get("met") else "criteria not met yet"
    first = {"Session": session, "Equity": _get(p, "equity"), "Day return": _get(p, "day_return_pct"),
             "SPY day": _get(p, "spy_day_return_pct"), "Campaign return": _get(p, "campaign_return_pct"),
             "SPY campaign": _get(p, "spy_campaign_return_pct"), "Fills": _get(p, "fills", "0"),
             "Round trips": _get(p, "round_trips", "0"), "Breaker events": _get(p, "breaker_events", "0"),
             "LLM cost": f"{_get(p, 'llm_cost_usd', '0')} USD (campaign {_get(p, 'llm_cost_campaign_usd', '0')})"}
    body = "\n".join([event.message, "", *table]) if table else event.message
    fields = _fields({}, first)
    return _alert(event, f"Paper campaign {name}, {day}: session {session}, {verdict}", body, fields, Severity.INFO)


def system_error(event: Event) -> Alert:
    """Something failed: a cycle was rolled back, a job crashed."""
    p = public_payload(event.payload)
    error = str(p.get("error") or event.message)
    summary = event.message.splitlines()[0] if event.message else error
    body = event.message if error in event.message else f"{event.message}\n{error}"
    if event.cycle_id:
        body += f"\nCycle {event.cycle_id} was rolled back; nothing it did was kept."
    fields = _fields(p, {"Error": error}, skip=("error",))
    return _alert(event, f"System error: {summary}", body, fields, Severity.WARNING)


def discovery_divergence(event: Event) -> Alert:
    """The discovery pickers (or discovery and the watchlist) disagree."""
    p = public_payload(event.payload)
    first: dict[str, str] = {}
    if "overlap" in p:
        first["Overlap"] = fmt_pct(p["overlap"], signed=False)
    only = p.get("only_in")
    if isinstance(only, Mapping):
        first.update({f"Only {k}": fmt_value("symbols", v) for k, v in only.items()})
    fields = _fields(p, first, skip=("overlap", "only_in"))
    return _alert(event, "Discovery pickers diverge", event.message or "The discovery pickers disagree.", fields,
                  Severity.INFO)


def _symbols(value: Any) -> list[str]:
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if isinstance(value, list | tuple | set | frozenset):
        return [str(v.get("symbol", v)) if isinstance(v, Mapping) else str(v) for v in value]
    return [] if value is None else [str(value)]


def watchlist_changed(event: Event) -> Alert:
    """Symbols added to or removed from the watchlist, with the reasons."""
    p = public_payload(event.payload)
    added, removed = _symbols(p.get("added")), _symbols(p.get("removed"))
    lines = [f"Added: {', '.join(added) or 'none'}", f"Removed: {', '.join(removed) or 'none'}"]
    reasons = p.get("reasons")
    if isinstance(reasons, Mapping):
        lines += [f"- {s}: {why}" for s, why in reasons.items()]
    if event.message:
        lines.append(event.message)
    first = {"Added": ", ".join(added) or "none", "Removed": ", ".join(removed) or "none"}
    fields = _fields(p, first, skip=("added", "removed", "reasons"))
    return _alert(event, f"Watchlist changed: +{len(added)} / -{len(removed)}", "\n".join(lines), fields,
                  Severity.INFO)


def reconciliation_diff(event: Event) -> Alert:
    """Quorum's records and the broker disagree."""
    p = public_payload(event.payload)
    diffs = p.get("differences")
    rows = diffs if isinstance(diffs, list) else []
    lines = [event.message] if event.message else []
    for d in rows[:MAX_FIELDS]:
        if isinstance(d, Mapping):
            what = f"{d.get('symbol', '?')} {d.get('field', '')}".strip()
            lines.append(f"- {what}: ours {fmt_value('ours', d.get('ours'))}, broker "
                         f"{fmt_value('broker', d.get('broker'))}")
        else:
            lines.append(f"- {d}")
    fields = _fields(p, {"Differences": str(len(rows))}, skip=("differences",))
    return _alert(event, f"Reconciliation: {len(rows)} difference(s) with the broker", "\n".join(lines), fields,
                  Severity.WARNING)


def generic(event: Event) -> Alert:
    """Any other event: its message and payload."""
    title = EventType(event.type).value.replace("_", " ").capitalize()
    if event.symbol:
        title += f": {event.symbol}"
    return _alert(event, title, event.message, _fields(event.payload), Severity.DEBUG)


TEMPLATES: Mapping[EventType, Callable[[Event], Alert]] = {
    EventType.BREAKER_TRIPPED: breaker_tripped,
    EventType.BREAKER_ELIGIBLE: breaker_eligible,
    EventType.LARGE_POSITION_CHANGE: large_position_change,
    EventType.DAILY_SUMMARY: daily_summary,
    EventType.PAPER_REPORT: paper_report,
    EventType.SYSTEM_ERROR: system_error,
    EventType.DISCOVERY_DIVERGENCE: discovery_divergence,
    EventType.WATCHLIST_CHANGED: watchlist_changed,
    EventType.RECONCILIATION_DIFF: reconciliation_diff,
}


def render_alert(event: Event) -> Alert:
    """The alert for `event`: its type's template, or the generic one.

    A template that cannot read an unexpected payload falls back to the generic alert (message and
    payload as they are), so one odd event never blocks the alerts behind it.
    """
    try:
        return TEMPLATES.get(EventType(event.type), generic)(event)
    except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError):
        return _alert(event, f"{str(event.type).replace('_', ' ').capitalize()} (unformatted)",
                      event.message, {}, Severity.DEBUG)
