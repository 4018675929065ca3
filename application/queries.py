"""Read models of the API: portfolio, trades, events, cycles and system status as JSON-safe dicts.

Money is a Decimal rendered as a string, times are ISO 8601, lists are pages
({"items", "total", "limit", "offset"}) of at most `MAX_PAGE` items.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import structlog

from application.control import breaker_state
from application.cycle.reconcile import merged_positions
from domain import breaker as brk
from domain.errors import QuorumError
from domain.events import Event
from domain.models.trading import Position
from domain.money import ZERO, money
from domain.money import price as to_price
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.market_data import MarketData
from domain.ports.repositories import CycleRecord, EventQuery, FillRecord
from domain.ports.uow import UnitOfWorkFactory
from domain.trading_state import OpenTrade

log = structlog.get_logger(__name__)
MAX_PAGE = 500


def check_page(limit: int, offset: int) -> None:
    """Refuse a page outside 1 <= limit <= MAX_PAGE, offset >= 0.

    Raises:
        ValueError: naming the bad value.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, got {offset}")


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def page(items: list[dict[str, Any]], *, total: int, limit: int, offset: int) -> dict[str, Any]:
    """A page of a list endpoint."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def event_to_dict(e: Event) -> dict[str, Any]:
    """An event of the log as JSON."""
    return {"id": e.id, "type": e.type.value, "at": e.at.isoformat(), "severity": e.severity.value,
            "message": e.message, "cycle_id": e.cycle_id, "symbol": e.symbol, "payload": e.payload}


def fill_to_dict(r: FillRecord) -> dict[str, Any]:
    """A recorded fill as JSON."""
    f = r.fill
    return {"client_order_id": f.client_order_id, "symbol": f.symbol, "side": f.side.value, "qty": str(f.qty),
            "price": str(f.price), "fee": str(f.fee), "notional": str(f.notional), "at": f.at.isoformat(),
            "reason": f.reason, "cycle_id": r.cycle_id, "shadow": r.shadow}


def cycle_to_dict(c: CycleRecord) -> dict[str, Any]:
    """A cycle record as JSON."""
    return {"id": c.id, "kind": c.kind, "as_of": c.as_of.isoformat(), "status": c.status, "symbol": c.symbol,
            "summary": c.summary, "error": c.error}


def breaker_to_dict(state: brk.BreakerState | None) -> dict[str, Any]:
    """The breaker state as JSON; a breaker that never ran is reported ACTIVE."""
    if state is None:
        return {"status": brk.BreakerStatus.ACTIVE.value, "entries_allowed": True, "can_resume": False,
                "note": "no cycle has run yet"}
    return {**state.to_dict(), "entries_allowed": brk.allows_entries(state),
            "can_resume": state.status is brk.BreakerStatus.ELIGIBLE}


@dataclass(frozen=True)
class ReadModels:
    """Queries behind the read endpoints.

    Attributes:
        uow_factory: opens units of work.
        scope: the scope to report on.
        broker: the source of truth for cash, equity and positions.
        calendar: trading sessions.
        market: quotes to value positions with (optional).
    """

    uow_factory: UnitOfWorkFactory
    scope: str
    broker: Broker
    calendar: MarketCalendar
    market: MarketData | None = None

    async def portfolio(self, as_of: datetime) -> dict[str, Any]:
        """Cash, equity and positions from the broker, valued at the latest quotes, with their stops."""
        account = await self.broker.account()
        async with self.uow_factory() as uow:
            state = await uow.trading.load(self.scope)
        positions = sorted(merged_positions(await self.broker.positions(), state), key=lambda p: p.symbol)
        prices = await self._prices([p.symbol for p in positions], as_of)
        rows = [self._position(p, prices.get(p.symbol), state.open_trades.get(p.symbol)) for p in positions]
        exposure = sum((abs(Decimal(r["market_value"])) for r in rows if r["market_value"] is not None), ZERO)
        return {"as_of": as_of.isoformat(), "paper": self.broker.is_paper, "cash": str(account.cash),
                "equity": str(account.equity), "buying_power": str(account.buying_power),
                "gross_exposure": str(exposure), "day_trade_count": account.day_trade_count,
                "pattern_day_trader": account.pattern_day_trader, "trading_blocked": account.trading_blocked,
                "positions": rows}

    async def _prices(self, symbols: list[str], as_of: datetime) -> dict[str, Decimal]:
        if not symbols or self.market is None:
            return {}
        try:
            quotes = await self.market.latest_quotes(symbols, as_of=as_of)
        except QuorumError as exc:
            log.warning("portfolio_quotes_unavailable", error=str(exc))
            return {}
        return {s: to_price(q.mid) for s, q in quotes.items() if q.mid > 0}

    @staticmethod
    def _position(p: Position, price: Decimal | None, trade: OpenTrade | None) -> dict[str, Any]:
        value = None if price is None else p.market_value(price)
        pnl = None if price is None else money((price - p.avg_entry_price) * p.qty)
        return {"symbol": p.symbol, "qty": str(p.qty), "avg_entry_price": str(p.avg_entry_price),
                "last_price": _str(price), "market_value": _str(value), "unrealized_pl": _str(pnl),
                "stop_price": _str(p.stop_price), "stop_kept_by": trade.stop_keeper.value if trade else None,
                "take_profit_price": _str(trade.take_profit_price) if trade else None,
                "opened_at": _iso(p.opened_at), "fractional": p.fractional}

    async def trades(self, *, limit: int, offset: int, since: datetime | None = None, until: datetime | None = None,
                     symbol: str | None = None, include_shadow: bool = False) -> dict[str, Any]:
        """Fills, newest first, one page."""
        check_page(limit, offset)
        async with self.uow_factory() as uow:
            records = await uow.fills.list(self.scope, since=since, until=until,
                                           shadow=None if include_shadow else False)
        if symbol is not None:
            records = [r for r in records if r.fill.symbol == symbol]
        records.reverse()
        return page([fill_to_dict(r) for r in records[offset:offset + limit]], total=len(records), limit=limit,
                    offset=offset)

    async def events(self, q: EventQuery) -> dict[str, Any]:
        """Events matching `q`, newest first, one page."""
        check_page(q.limit, q.offset)
        if q.scope != self.scope:
            raise ValueError(f"events are reported for scope {self.scope!r} only")
        async with self.uow_factory() as uow:
            found = await uow.events.query(q)
            total = await uow.events.count(q)
        return page([event_to_dict(e) for e in found], total=total, limit=q.limit, offset=q.offset)

    async def cycle(self, cycle_id: str) -> dict[str, Any] | None:
        """The cycle with this id, or None (also when it belongs to another scope)."""
        async with self.uow_factory() as uow:
            record = await uow.cycles.get(cycle_id)
        return None if record is None or record.scope != self.scope else cycle_to_dict(record)

    async def breaker(self) -> dict[str, Any]:
        """The circuit breaker's stored state."""
        return breaker_to_dict(await breaker_state(self.uow_factory, self.scope))

    async def system_status(self, as_of: datetime) -> dict[str, Any]:
        """Trading state (paused, breaker), the last cycle and whether the market is open."""
        state = await breaker_state(self.uow_factory, self.scope)
        async with self.uow_factory() as uow:
            ctl = (await uow.trading.load(self.scope)).control
            last = await uow.cycles.last(self.scope)
        control = {"by": ctl.by or None, "reason": ctl.reason or None, "at": _iso(ctl.at)}
        paused = ctl.paused
        entries = state is None or brk.allows_entries(state)
        trading = "paused" if paused else ("active" if entries else "exits_only")
        return {
            "as_of": as_of.isoformat(),
            "scope": self.scope,
            "paper": self.broker.is_paper,
            "trading": {"state": trading, "paused": paused, "by": control.get("by"), "reason": control.get("reason"),
                        "at": control.get("at")},
            "breaker": {k: v for k, v in breaker_to_dict(state).items()
                        if k in ("status", "entries_allowed", "can_resume", "tripped_at", "trip_trigger",
                                 "trip_reason", "eligible_since", "note")},
            "last_cycle": None if last is None else cycle_to_dict(last),
            "market": self.market_clock(as_of),
        }

    def market_clock(self, as_of: datetime) -> dict[str, Any]:
        """Whether the regular session is open at `as_of`, and when it next opens or closes."""
        is_open = self.calendar.is_open(as_of)
        upcoming = self.calendar.next_session(self.calendar.previous_session(as_of))
        if is_open:
            return {"open": True, "closes_at": self.calendar.session_close(upcoming).isoformat()}
        return {"open": False, "next_open": self.calendar.session_open(upcoming).isoformat()}
