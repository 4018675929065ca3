"""Invariants of the live path, checked after every cycle in rehearsals and tests, failing loudly.

- position_protected: every open position is protected by live GTC sell stop orders at the broker that
  cover it, or by a stop Quorum keeps as typed data (a Quorum-kept stop with a price).
- exit_accounted: every exit decided was sent (an order the database knows) or recorded with a reason.
- breaker_counts_each_trade_once: the circuit breaker has counted exactly as many closed trades as the
  broker's fills closed positions since the start (whoever closed them: an agent, Quorum's stop, the
  broker's stop or take-profit leg).
- database_equals_broker: positions, open orders and fills in the database are the broker's.

The breaker and fills checks assume the account and the scope started empty at `start` (a rehearsal,
a test): they compare everything since then.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from application.cycle.breaker_book import BREAKER_DOC
from application.cycle.decision import ProposalOutcome
from domain.breaker import BreakerState
from domain.models.trading import Fill, Order, OrderStatus, OrderType, Side, TimeInForce
from domain.ports.broker import Broker
from domain.ports.uow import UnitOfWorkFactory
from domain.trading_state import StopKeeper, TradingState
from domain.verdict import Verdict

OPEN = (OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True, slots=True)
class Violation:
    """An invariant that did not hold: when, which rule, and the evidence."""

    at: datetime
    rule: str
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for summary.json."""
        return {"at": self.at.isoformat(), "rule": self.rule, "evidence": self.evidence}


def closing_fills(fills: Sequence[Fill]) -> int:
    """How many fills brought a long position back to zero (closed trades), oldest first."""
    held: dict[str, Decimal] = defaultdict(Decimal)
    closed = 0
    for f in sorted(fills, key=lambda f: f.at):
        before = held[f.symbol]
        held[f.symbol] = before + (f.qty if f.side is Side.BUY else -f.qty)
        if f.side is Side.SELL and before > 0 and held[f.symbol] <= 0:
            closed += 1
    return closed


def unprotected(positions: Sequence[Any], orders: Sequence[Order], state: TradingState) -> list[str]:
    """Evidence for each long position with neither covering GTC stop orders nor a Quorum-kept stop."""
    out = []
    for p in positions:
        if p.qty <= 0:
            continue
        stops = [o for o in orders if o.symbol == p.symbol and o.status.is_open and o.request.side is Side.SELL
                 and o.request.type is OrderType.STOP and o.request.time_in_force is TimeInForce.GTC]
        covered = sum((o.request.qty - o.filled_qty for o in stops), Decimal(0))
        trade = state.open_trades.get(p.symbol)
        kept = trade is not None and trade.stop_keeper is StopKeeper.QUORUM and trade.stop_price is not None
        if covered < p.qty and not kept:
            out.append(f"{p.symbol}: {p.qty} held, GTC stop orders cover {covered}, Quorum-kept stop "
                       f"{trade.stop_price if trade else None} ({trade.stop_keeper.value if trade else 'no trade'})")
    return out


@dataclass
class InvariantChecker:
    """Checks the invariants against the broker and the database; keeps every violation.

    Attributes:
        broker: the broker (the emulator or the in-memory broker) the system trades with.
        uow_factory: the system's database.
        scope: the scope the system trades under.
        start: when the account and the scope started empty.
    """

    broker: Broker
    uow_factory: UnitOfWorkFactory
    scope: str
    start: datetime
    checked: int = 0
    violations: list[Violation] = field(default_factory=list)

    async def check(self, at: datetime, outcomes: Sequence[ProposalOutcome] = ()) -> list[Violation]:
        """Check every invariant now; returns (and keeps) the violations found."""
        positions = await self.broker.positions()
        orders = await self.broker.open_orders()
        fills = await self.broker.fills_since(self.start)
        async with self.uow_factory() as uow:
            state = await uow.trading.load(self.scope)
            doc = await uow.state.load(self.scope, BREAKER_DOC)
            stored_positions = await uow.positions.list(self.scope)
            stored_fills = await uow.fills.list(self.scope, since=self.start, shadow=False, limit=1_000_000)
            stored_orders = await uow.orders.list(self.scope, status=OPEN, limit=100_000)
            sent = {o.limit.order.client_order_id: await uow.orders.get(o.limit.order.client_order_id)
                    for o in outcomes if o.final is Verdict.SELL and o.limit is not None and o.limit.order is not None}
        found: list[Violation] = []
        found += [Violation(at, "position_protected", e) for e in unprotected(positions, orders, state)]
        found += [Violation(at, "exit_accounted", e) for e in _exits(outcomes, sent)]
        counted = BreakerState.from_dict(doc).trades_counted if doc else 0
        closed = closing_fills(fills)
        if counted != closed:
            found.append(Violation(at, "breaker_counts_each_trade_once", f"the broker's fills closed {closed} trades "
                                   f"since {self.start.isoformat()}, the breaker counted {counted}"))
        found += [Violation(at, "database_equals_broker", e)
                  for e in _db_vs_broker(positions, orders, fills, stored_positions, stored_fills, stored_orders)]
        self.checked += 4
        self.violations += found
        return found

    def summary(self) -> dict[str, Any]:
        """{"checked": N, "violations": [...]} for summary.json."""
        return {"checked": self.checked, "violations": [v.to_dict() for v in self.violations]}


def _exits(outcomes: Sequence[ProposalOutcome], sent: dict[str, Any]) -> list[str]:
    out = []
    for o in outcomes:
        exit_decided = o.is_stop_exit or (o.signal.action == "SELL" and o.limit is not None and o.limit.order)
        if not exit_decided:
            continue
        if o.final is Verdict.SELL and o.limit is not None and o.limit.order is not None:
            if sent.get(o.limit.order.client_order_id) is None:
                out.append(f"{o.symbol}: exit decided as SELL but no order {o.limit.order.client_order_id} recorded")
        elif o.final in (Verdict.REJECTED, Verdict.HOLD, Verdict.SHADOW_EXIT):
            if not o.reason:
                out.append(f"{o.symbol}: exit ended as {o.final} without a reason")
        else:
            out.append(f"{o.symbol}: exit ended as {o.final!r}")
    return out


def _same_fill(f: Fill) -> tuple[str, datetime, Decimal, Decimal]:
    """A fill's identity whatever scale its numbers are stored at."""
    return f.client_order_id, f.at, f.qty.normalize(), f.price.normalize()


def _db_vs_broker(positions: Sequence[Any], orders: Sequence[Order], fills: Sequence[Fill], stored_positions: Any,
                  stored_fills: Any, stored_orders: Any) -> list[str]:
    out = []
    broker_pos = {p.symbol: p.qty for p in positions if p.qty != 0}
    db_pos = {p.symbol: p.qty for p in stored_positions if p.qty != 0}
    if broker_pos != db_pos:
        out.append(f"positions: broker {sorted(broker_pos.items())}, database {sorted(db_pos.items())}")
    broker_open = {o.client_order_id for o in orders if not o.is_leg}
    db_open = {r.order.client_order_id for r in stored_orders if not r.shadow}
    if broker_open != db_open:
        out.append(f"open orders: only at the broker {sorted(broker_open - db_open)}, only in the database "
                   f"{sorted(db_open - broker_open)}")
    broker_fills = {_same_fill(f) for f in fills}
    db_fills = {_same_fill(r.fill) for r in stored_fills}
    if broker_fills != db_fills:
        out.append(f"fills: {len(broker_fills - db_fills)} at the broker not in the database, "
                   f"{len(db_fills - broker_fills)} in the database not at the broker")
    return out
