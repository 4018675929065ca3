"""A recorded backtest run as the chat reads it: which run (`find_run`, the latest or one by id), and its portfolio
at the end of the run (`recorded_portfolio`), read from the run's own records, never from a broker.

A backtest stores everything under scope `backtest:<run id>` and, once it has finished, its summary as the state
document `backtest_run` of that scope. The portfolio is the run's final positions (the positions mirror, with the
stops of its trading state), its last equity point (equity, cash, exposure) and the orders still open at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from domain.chat import ToolResult
from domain.money import money
from domain.ports.repositories import EquityPoint
from domain.ports.uow import UnitOfWorkFactory

BACKTEST_RUN = "backtest_run"
"""The state document a finished backtest saves its summary in (entrypoints/commands/backtest.py)."""
SCOPE_PREFIX = "backtest:"
LATEST = "latest"
JUST_AFTER = timedelta(seconds=1)


@dataclass(frozen=True)
class RecordedRun:
    """A finished backtest run.

    Attributes:
        run_id: the run's id (`20240301-120000-abc123`).
        scope: `backtest:<run id>`, the scope of all its records.
        summary: its summary (`summary.json` of its report).
        last_session: the exchange day of its last valuation (None when it recorded none).
        as_of: the moment the chat reads it at: just after its last valuation (repositories read `until` it,
            exclusive), or when the summary was saved when there is no valuation.
    """

    run_id: str
    scope: str
    summary: dict[str, Any]
    last_session: date | None
    as_of: datetime

    @property
    def label(self) -> str:
        """"backtest <id>, as of <last session>"."""
        return f"backtest {self.run_id}, as of {self.last_session or 'no valuation'}"

    @property
    def period(self) -> str:
        """"<start> to <end>, <n> sessions" from the summary."""
        s = self.summary
        return f"{s.get('start', '?')} to {s.get('end', '?')}, {s.get('sessions', '?')} sessions"


def run_scope(which: str) -> str:
    """The scope of run `which` (a run id, or already `backtest:<run id>`).

    Raises:
        ValueError: `which` is empty.
    """
    which = which.strip()
    if not which or which == SCOPE_PREFIX:
        raise ValueError("a backtest run id must not be empty")
    return which if which.startswith(SCOPE_PREFIX) else SCOPE_PREFIX + which


async def find_run(uow_factory: UnitOfWorkFactory, which: str, *, tz: tzinfo) -> RecordedRun | None:
    """The finished backtest run `which`: "latest" (the one whose summary was saved last), a run id or its scope.

    Args:
        uow_factory: reads the state documents and the equity history.
        which: "latest", a run id, or `backtest:<run id>`.
        tz: the exchange's time zone (the last session is the exchange day of the last valuation).

    Returns:
        The run, or None when there is no such finished run.

    Raises:
        ValueError: `which` is empty.
    """
    async with uow_factory() as uow:
        if which.strip() == LATEST:
            doc = await uow.state.latest(BACKTEST_RUN, scope_prefix=SCOPE_PREFIX)
            if doc is None:
                return None
            scope, summary, saved_at = doc.scope, doc.value, doc.saved_at
        else:
            scope = run_scope(which)
            found = await uow.state.load(scope, BACKTEST_RUN)
            if found is None:
                return None
            summary, saved_at = found, None
        points = await uow.equity.list(scope)
    last = points[-1] if points else None
    if last is not None:
        as_of, session = last.at + JUST_AFTER, last.at.astimezone(tz).date()
    else:
        as_of, session = saved_at or _end_of(summary, tz), None
    return RecordedRun(scope.removeprefix(SCOPE_PREFIX), scope, summary, session, as_of)


def _end_of(summary: dict[str, Any], tz: tzinfo) -> datetime:
    end = date.fromisoformat(str(summary.get("end") or "1970-01-01"))
    return datetime(end.year, end.month, end.day, 23, 59, tzinfo=tz)


@dataclass(frozen=True)
class RecordedPosition:
    """A position held at the end of the run: as the positions mirror recorded it, with the stop its trading
    state kept (None when it kept none) and its cost (qty x average entry)."""

    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    cost: Decimal
    stop_price: Decimal | None
    stop_kept_by: str | None
    take_profit_price: Decimal | None
    opened_at: datetime | None


@dataclass(frozen=True)
class RecordedPortfolio:
    """A run's portfolio at its last valuation.

    Attributes:
        run: the run.
        valuation: its last equity point (None when it recorded none).
        positions: by symbol.
        open_orders: orders still open at the end of the run.
    """

    run: RecordedRun
    valuation: EquityPoint | None
    positions: list[RecordedPosition]
    open_orders: int


async def recorded_portfolio(uow_factory: UnitOfWorkFactory, run: RecordedRun) -> RecordedPortfolio:
    """The portfolio of `run` at its last valuation, from its records (positions, trading state, equity, orders)."""
    async with uow_factory() as uow:
        positions = await uow.positions.list(run.scope)
        state = await uow.trading.load(run.scope)
        points = await uow.equity.list(run.scope, until=run.as_of)
        orders = await uow.orders.list(run.scope)
    rows = []
    for p in sorted(positions, key=lambda p: p.symbol):
        trade = state.open_trades.get(p.symbol)
        stop = p.stop_price if p.stop_price is not None else (trade.stop_price if trade else None)
        rows.append(RecordedPosition(p.symbol, p.qty, p.avg_entry_price, money(p.qty * p.avg_entry_price), stop,
                                     trade.stop_keeper.value if trade else None,
                                     trade.take_profit_price if trade else None, p.opened_at or
                                     (trade.opened_at if trade else None)))
    return RecordedPortfolio(run, points[-1] if points else None, rows,
                             sum(1 for o in orders if o.order.status.is_open))


def plain(value: Decimal, *, places: int = 0) -> str:
    """`value` without trailing zeros (stored quantities carry 9 decimals) but with at least `places` decimals,
    never in exponent notation."""
    trimmed = value.normalize()
    if -trimmed.as_tuple().exponent < places:  # type: ignore[operator]
        trimmed = trimmed.quantize(Decimal(1).scaleb(-places))
    return format(trimmed, "f")


def _dec(value: Decimal | None, places: int = 2) -> str | None:
    return None if value is None else plain(value, places=places)


def recorded_portfolio_result(pf: RecordedPortfolio) -> ToolResult:
    """The portfolio tool's answer in a recorded run: its label, the last valuation, the final positions."""
    v, run = pf.valuation, pf.run
    held = ", ".join(f"{p.symbol} {plain(p.qty)} @ {_dec(p.avg_entry_price)} (stop {_dec(p.stop_price) or 'none'})"
                     for p in pf.positions) or "no positions"
    if v is None:
        totals = "no valuation was recorded"
    else:
        share = f" ({v.exposure / v.equity:.0%} of equity)" if v.equity > 0 else ""
        totals = (f"equity ${money(v.equity)}, cash ${money(v.cash)}, gross exposure ${money(v.exposure)}{share} "
                  f"at {v.at.isoformat(timespec='minutes')}")
    start = run.summary.get("starting_cash")
    text = (f"Recorded run: {run.label} ({run.period}; simulated broker, not the live account). "
            f"{totals[0].upper()}{totals[1:]}" + (f", from ${start} at the start" if start else "") +
            f".\nPositions at the end: {held}.\nOrders still open at the end: {pf.open_orders}.")
    positions = [{"symbol": p.symbol, "qty": plain(p.qty), "avg_entry_price": _dec(p.avg_entry_price),
                  "cost": _dec(p.cost), "stop_price": _dec(p.stop_price), "stop_kept_by": p.stop_kept_by,
                  "take_profit_price": _dec(p.take_profit_price),
                  "opened_at": p.opened_at.isoformat() if p.opened_at else None} for p in pf.positions]
    data = {"source": "recorded backtest run", "run_id": run.run_id, "scope": run.scope,
            "as_of": run.as_of.isoformat(), "last_session": run.last_session.isoformat() if run.last_session
            else None, "period": run.period, "starting_cash": start, "positions": positions,
            "open_orders": pf.open_orders,
            **({} if v is None else {"equity": _dec(v.equity), "cash": _dec(v.cash),
                                     "gross_exposure": _dec(v.exposure), "valued_at": v.at.isoformat()})}
    columns = ("symbol", "qty", "avg_entry_price", "cost", "stop_price", "stop_kept_by", "take_profit_price",
               "opened_at")
    return ToolResult("portfolio", {}, True, text, data, columns=columns,
                      rows=tuple(tuple(p[c] for c in columns) for p in positions))
