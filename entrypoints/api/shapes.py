"""The JSON the API answers (and the CLI prints with `--json`), shaped from the use cases' typed results.

Money is a decimal string, times are ISO 8601, lists are pages {"items", "total", "limit", "offset"}.
Picker performance and the paper-trade report share their shapes with summary.json (`adapters.reports.shapes`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from adapters.reports.shapes import paper_trades_json, picker_performance_json
from application.cycle_requests import CycleRequested
from application.flatten import FlattenResult
from application.performance_report import PerformanceReport
from application.queries import MarketClock, Page, Portfolio, PositionView, SystemStatus
from domain import breaker as brk
from domain.currency import ACCOUNT_CURRENCY, DisplayCurrency
from domain.events import Event
from domain.ports.discovery import DiscoveryRun, Suggestion, WatchlistChange, WatchlistEntry
from domain.ports.discovery_api import (
    DiscoveryDisabled,
    DiscoveryOutcome,
    DiscoveryPerformance,
    DiscoveryRunResult,
    DiscoveryStatus,
    WatchlistEdit,
)
from domain.ports.repositories import CycleRecord, FillRecord
from domain.trading_state import ControlState

T = TypeVar("T")
Json = dict[str, Any]
STATUS_BREAKER_KEYS = ("status", "entries_allowed", "can_resume", "tripped_at", "trip_trigger", "trip_reason",
                       "eligible_since", "note")
"""The breaker fields /api/system/status repeats (the full state is /api/system/circuit-breaker)."""


def iso(at: datetime | None) -> str | None:
    """ISO 8601, or None."""
    return None if at is None else at.isoformat()


def dec(value: Decimal | None) -> str | None:
    """A Decimal as a string, or None."""
    return None if value is None else str(value)


def page_json(page: Page[T], item: Callable[[T], Json]) -> Json:
    """A page of a list endpoint, each item shaped by `item`."""
    return {"items": [item(i) for i in page.items], "total": page.total, "limit": page.limit, "offset": page.offset}


def event_json(e: Event) -> Json:
    """An event of the log."""
    return {"id": e.id, "type": e.type.value, "at": e.at.isoformat(), "severity": e.severity.value,
            "message": e.message, "cycle_id": e.cycle_id, "symbol": e.symbol, "payload": e.payload}


def fill_json(r: FillRecord) -> Json:
    """A recorded fill."""
    f = r.fill
    return {"client_order_id": f.client_order_id, "symbol": f.symbol, "side": f.side.value, "qty": str(f.qty),
            "price": str(f.price), "fee": str(f.fee), "notional": str(f.notional), "at": f.at.isoformat(),
            "reason": f.reason, "cycle_id": r.cycle_id, "shadow": r.shadow}


def cycle_json(c: CycleRecord) -> Json:
    """A cycle record (its summary is the cycle's own JSON)."""
    return {"id": c.id, "kind": c.kind, "as_of": c.as_of.isoformat(), "status": c.status, "symbol": c.symbol,
            "summary": c.summary, "error": c.error}


def cycle_request_json(r: CycleRequested) -> Json:
    """The answer to POST /api/cycles/run: the cycle id, whether it was deduplicated, where to follow it."""
    return {"cycle_id": r.cycle_id, "deduplicated": r.deduplicated, "status_url": f"/api/cycles/{r.cycle_id}"}


def breaker_json(state: brk.BreakerState | None) -> Json:
    """The breaker state with `entries_allowed` and `can_resume`; a breaker that never ran is reported ACTIVE."""
    if state is None:
        return {"status": brk.BreakerStatus.ACTIVE.value, "entries_allowed": True, "can_resume": False,
                "note": "no cycle has run yet"}
    return {**state.to_dict(), "entries_allowed": brk.allows_entries(state),
            "can_resume": state.status is brk.BreakerStatus.ELIGIBLE}


def position_json(v: PositionView) -> Json:
    """A position valued at the latest quote, with its stop."""
    p = v.position
    return {"symbol": p.symbol, "qty": str(p.qty), "avg_entry_price": str(p.avg_entry_price),
            "last_price": dec(v.last_price), "market_value": dec(v.market_value), "unrealized_pl": dec(v.unrealized_pl),
            "stop_price": dec(p.stop_price), "stop_kept_by": None if v.stop_kept_by is None else v.stop_kept_by.value,
            "take_profit_price": dec(v.take_profit_price), "opened_at": iso(p.opened_at), "fractional": p.fractional}


def portfolio_json(p: Portfolio, display: DisplayCurrency | None = None) -> Json:
    """Cash, equity, buying power, exposure, PDT figures and positions (USD); with a display currency other than
    USD also "display_currency": the rate (or why there is none) and the totals converted."""
    a = p.account
    out: Json = {"as_of": p.as_of.isoformat(), "paper": p.paper, "cash": str(a.cash), "equity": str(a.equity),
                 "buying_power": str(a.buying_power), "gross_exposure": str(p.gross_exposure),
                 "day_trade_count": a.day_trade_count, "pattern_day_trader": a.pattern_day_trader,
                 "trading_blocked": a.trading_blocked, "positions": [position_json(v) for v in p.positions]}
    if display is not None and display.currency != ACCOUNT_CURRENCY:
        out["display_currency"] = display.to_json(cash=a.cash, equity=a.equity, buying_power=a.buying_power,
                                                  gross_exposure=p.gross_exposure)
    return out


def market_clock_json(m: MarketClock) -> Json:
    """{"open": true, "closes_at"} or {"open": false, "next_open"}."""
    if m.is_open:
        return {"open": True, "closes_at": iso(m.closes_at)}
    return {"open": False, "next_open": iso(m.next_open)}


def system_status_json(s: SystemStatus) -> Json:
    """Trading state, the breaker's main fields, the last cycle and the market clock."""
    c = s.control
    return {
        "as_of": s.as_of.isoformat(),
        "scope": s.scope,
        "paper": s.paper,
        "trading": {"state": s.trading, "paused": c.paused, "by": c.by or None, "reason": c.reason or None,
                    "at": iso(c.at)},
        "breaker": {k: v for k, v in breaker_json(s.breaker).items() if k in STATUS_BREAKER_KEYS},
        "last_cycle": None if s.last_cycle is None else cycle_json(s.last_cycle),
        "market": market_clock_json(s.market),
    }


def control_json(c: ControlState) -> Json:
    """The pause switch after a pause or resume: {"trading": "paused"|"resumed", "paused", "by", "reason", "at"}."""
    return {"trading": "paused" if c.paused else "resumed", "paused": c.paused, "by": c.by, "reason": c.reason,
            "at": iso(c.at)}


def flatten_json(r: FlattenResult) -> Json:
    """What the kill switch did, with its one-sentence message."""
    return {"at": r.at.isoformat(), "market_open": r.market_open, "cancelled": r.cancelled,
            "sells": [{"symbol": o.symbol, "qty": str(o.request.qty), "client_order_id": o.client_order_id,
                       "status": o.status.value} for o in r.sells],
            "failed": r.failed, "locked": r.locked, "message": r.message}


def performance_report_json(r: PerformanceReport, display: DisplayCurrency | None = None) -> Json:
    """{"window", "as_of", "start_equity", "end_equity", "valuations", "performance"} (USD); with a display currency
    other than USD also "display_currency" (the rate and the equities, profit and net deposits converted)."""
    perf = r.performance.to_dict()
    out: Json = {"window": r.window, "as_of": r.as_of.isoformat(), "start_equity": dec(r.start_equity),
                 "end_equity": dec(r.end_equity), "valuations": r.valuations, "performance": perf}
    if display is not None and display.currency != ACCOUNT_CURRENCY:
        out["display_currency"] = display.to_json(
            start_equity=r.start_equity, end_equity=r.end_equity, profit=Decimal(str(perf["profit"])),
            net_deposits=Decimal(str(perf["net_deposits"])))
    return out


def suggestion_json(s: Suggestion) -> Json:
    """A stored suggestion, its details (agreement, divergence, components) spread in."""
    return {"run_id": s.run_id, "picker": s.picker, "symbol": s.symbol, "score": round(s.score, 6), "rank": s.rank,
            "as_of": s.as_of.isoformat(), "reasons": list(s.reasons), **s.details,
            "entry_price": dec(s.entry_price),
            "forward_returns": {f"{h}d": v for h, v in sorted(s.forward_returns.items())},
            "universe_returns": {f"{h}d": v for h, v in sorted(s.universe_returns.items())}}


def change_json(c: WatchlistChange) -> Json:
    """A watchlist change."""
    return {"symbol": c.symbol, "change": c.change, "source": c.source, "reason": c.reason, "at": c.at.isoformat()}


def entry_json(e: WatchlistEntry) -> Json:
    """A watchlist entry."""
    return {"symbol": e.symbol, "source": e.source, "score": e.score, "reason": e.reason,
            "added_at": e.added_at.isoformat()}


def run_json(run: DiscoveryRun) -> Json:
    """A discovery run with its figures (without the universe list)."""
    return {"run_id": run.id, "as_of": run.as_of.isoformat(), "pickers": list(run.pickers),
            "universe_size": run.universe_size, **{k: v for k, v in run.stats.items() if k != "universe"}}


def outcome_json(o: DiscoveryOutcome) -> Json:
    """A run's outcome: the run, the ensemble's suggestions, divergent symbols and the watchlist changes."""
    return {"status": o.status, **run_json(o.run), "skipped": o.skipped, "llm_error": o.llm_error,
            "suggestions": [suggestion_json(s) for s in o.suggestions if s.picker == "ensemble"],
            "divergent": [r.symbol for r in o.divergent],
            "changes": [change_json(c) for c in o.changes],
            "watchlist": [entry_json(e) for e in o.watchlist]}


def discovery_run_json(r: DiscoveryRunResult) -> Json:
    """The outcome of a run, or {"status": "disabled", "reason"}."""
    if isinstance(r, DiscoveryDisabled):
        return {"status": "disabled", "reason": r.reason}
    return outcome_json(r)


def discovery_status_json(s: DiscoveryStatus) -> Json:
    """Last and next run, watchlist size, whether a run is in progress."""
    return {"enabled": s.enabled, "pickers": list(s.pickers), "running": s.running,
            "last_run": None if s.last_run is None else run_json(s.last_run), "next_run": iso(s.next_run),
            "watchlist_size": s.watchlist_size, "max_watchlist_size": s.max_watchlist_size, "manual": s.manual}


def discovery_performance_json(p: DiscoveryPerformance) -> Json:
    """{"as_of", "pickers": picker -> "1d"/"5d"/"20d" -> figures, "paper_trades": the A/B report}."""
    return {"as_of": p.as_of.isoformat(), "pickers": picker_performance_json(p.pickers),
            "paper_trades": paper_trades_json(p.paper_trades)}


def watchlist_edit_json(e: WatchlistEdit) -> Json:
    """{"changes": [...], "watchlist": [...]}."""
    return {"changes": [change_json(c) for c in e.changes], "watchlist": [entry_json(w) for w in e.watchlist]}
