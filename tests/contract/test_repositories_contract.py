"""Contract of the trading-core repositories and the unit of work, run against both backends.

Every test runs once on the in-memory fakes ("inmemory") and once on PostgreSQL ("postgres"),
in a scope of its own. Tests that need no commit leave the unit of work without committing,
so they leave no rows behind.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Order, OrderRequest, OrderStatus, OrderType, Position, Side, TimeInForce
from domain.ports.repositories import (
    CycleRecord,
    CycleRepository,
    EquityPoint,
    EquityRepository,
    EventQuery,
    EventRepository,
    FillRecord,
    FillRepository,
    LLMCallRecord,
    LLMCallRepository,
    OrderRecord,
    OrderRepository,
    PositionRepository,
    StateRepository,
)
from domain.ports.uow import UnitOfWork, UnitOfWorkFactory

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)
NEW_YORK = timezone(timedelta(hours=-5))


def order(scope: str, n: int, *, status: OrderStatus = OrderStatus.NEW, at: datetime = T0, **req: Any) -> OrderRecord:
    request = OrderRequest(
        client_order_id=f"{scope}:o{n}",
        symbol=req.pop("symbol", "AAPL"),
        side=req.pop("side", Side.BUY),
        qty=req.pop("qty", Decimal("10")),
        **req,
    )
    return OrderRecord(Order(request, f"broker-{n}", status, at), scope=scope, cycle_id=f"{scope}:c1")


def fill(scope: str, n: int, at: datetime, *, shadow: bool = False, **kw: Any) -> FillRecord:
    f = Fill(
        client_order_id=kw.pop("client_order_id", f"{scope}:o{n}"),
        symbol=kw.pop("symbol", "AAPL"),
        side=kw.pop("side", Side.BUY),
        qty=kw.pop("qty", Decimal("5")),
        price=kw.pop("price", Decimal("180.25")),
        fee=kw.pop("fee", Decimal("0")),
        at=at,
        reason=kw.pop("reason", "entry"),
    )
    return FillRecord(f, scope=scope, cycle_id=f"{scope}:c1", shadow=shadow)


def event(scope: str, at: datetime, type_: EventType = EventType.SIGNAL, **kw: Any) -> Event:
    return Event(type=type_, at=at, message=kw.pop("message", type_.value), scope=scope, **kw)


def llm_call(scope: str, at: datetime, cost: float, **kw: Any) -> LLMCallRecord:
    kw.setdefault("ok", True)
    return LLMCallRecord(
        at=at, scope=scope, agent="signal", provider="anthropic", model="claude", prompt_tokens=1200,
        completion_tokens=300, cost_usd=cost, latency_ms=850.5, **kw,
    )


PORTS = {
    "events": EventRepository,
    "orders": OrderRepository,
    "fills": FillRepository,
    "positions": PositionRepository,
    "equity": EquityRepository,
    "cycles": CycleRepository,
    "state": StateRepository,
    "llm_calls": LLMCallRepository,
}


async def test_the_unit_of_work_holds_an_implementation_of_every_repository_port(
    uow_factory: UnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        assert UnitOfWork in type(uow).__mro__
        for name, port in PORTS.items():
            assert port in type(getattr(uow, name)).__mro__, f"uow.{name} does not implement {port.__name__}"


# --- events -------------------------------------------------------------------------------------


async def test_events_come_back_newest_first_with_ids_and_all_fields(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await uow.events.add([
            event(scope, T0 + MIN, EventType.ORDER_SUBMITTED, symbol="AAPL", cycle_id="c1",
                  severity=Severity.WARNING, payload={"qty": "10", "nested": {"ok": True, "n": [1, 2.5]}}),
            event(scope, T0, EventType.CYCLE_STARTED, cycle_id="c1"),
            event(scope, T0 + 2 * MIN, EventType.CYCLE_COMPLETED, cycle_id="c1"),
        ])
        got = await uow.events.query(EventQuery(scope=scope))
    assert [e.type for e in got] == [EventType.CYCLE_COMPLETED, EventType.ORDER_SUBMITTED, EventType.CYCLE_STARTED]
    assert all(isinstance(e.id, int) for e in got) and len({e.id for e in got}) == 3
    submitted = got[1]
    assert submitted == Event(
        type=EventType.ORDER_SUBMITTED, at=T0 + MIN, message="order_submitted", severity=Severity.WARNING,
        cycle_id="c1", symbol="AAPL", payload={"qty": "10", "nested": {"ok": True, "n": [1, 2.5]}}, scope=scope,
        id=submitted.id,
    )
    assert submitted.at.utcoffset() == timedelta(0)


async def test_events_at_the_same_time_come_back_in_reverse_insertion_order(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await uow.events.add([event(scope, T0, message=f"m{i}") for i in range(3)])
        await uow.events.add([event(scope, T0, message="m3")])
        got = await uow.events.query(EventQuery(scope=scope))
    assert [e.message for e in got] == ["m3", "m2", "m1", "m0"]


async def test_event_payload_values_become_json(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    payload: dict[str, Any] = {"price": Decimal("123.4567"), "at": T0, "side": Side.BUY, "tags": ["a"]}
    async with uow_factory() as uow:
        await uow.events.add([event(scope, T0, payload=payload)])
        payload["tags"].append("mutated after add")
        (got,) = await uow.events.query(EventQuery(scope=scope))
        got.payload["tags"].append("mutated after query")
        (again,) = await uow.events.query(EventQuery(scope=scope))
    assert again.payload == {"price": "123.4567", "at": T0.isoformat(), "side": "buy", "tags": ["a"]}


async def test_events_filter_by_type_symbol_cycle_and_severity(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.events.add([
            event(scope, T0, EventType.SIGNAL, symbol="AAPL", cycle_id="c1", severity=Severity.DEBUG),
            event(scope, T0 + MIN, EventType.RISK, symbol="AAPL", cycle_id="c1", severity=Severity.INFO),
            event(scope, T0 + 2 * MIN, EventType.SIGNAL, symbol="MSFT", cycle_id="c2", severity=Severity.WARNING),
            event(scope, T0 + 3 * MIN, EventType.SYSTEM_ERROR, cycle_id="c2", severity=Severity.CRITICAL),
            event(f"{scope}:other", T0, EventType.SIGNAL, symbol="AAPL", cycle_id="c1", severity=Severity.CRITICAL),
        ])

        async def times(**kw: Any) -> list[datetime]:
            q = EventQuery(scope=scope, **kw)
            found = await uow.events.query(q)
            assert await uow.events.count(q) == len(found)
            return [e.at for e in found]

        assert await times() == [T0 + 3 * MIN, T0 + 2 * MIN, T0 + MIN, T0]
        assert await times(types=(EventType.SIGNAL,)) == [T0 + 2 * MIN, T0]
        assert await times(types=(EventType.RISK, EventType.SYSTEM_ERROR)) == [T0 + 3 * MIN, T0 + MIN]
        assert await times(symbol="AAPL") == [T0 + MIN, T0]
        assert await times(cycle_id="c2") == [T0 + 3 * MIN, T0 + 2 * MIN]
        assert await times(min_severity=Severity.DEBUG) == [T0 + 3 * MIN, T0 + 2 * MIN, T0 + MIN, T0]
        assert await times(min_severity=Severity.INFO) == [T0 + 3 * MIN, T0 + 2 * MIN, T0 + MIN]
        assert await times(min_severity=Severity.WARNING) == [T0 + 3 * MIN, T0 + 2 * MIN]
        assert await times(min_severity=Severity.CRITICAL) == [T0 + 3 * MIN]
        assert await times(types=(EventType.SIGNAL,), symbol="AAPL", min_severity=Severity.INFO) == []
        assert await times(symbol="TSLA") == []


async def test_event_time_range_includes_since_and_excludes_until(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.events.add([event(scope, T0 + i * MIN, message=str(i)) for i in range(5)])

        async def messages(**kw: Any) -> list[str]:
            return [e.message for e in await uow.events.query(EventQuery(scope=scope, **kw))]

        assert await messages(since=T0 + MIN, until=T0 + 3 * MIN) == ["2", "1"]
        assert await messages(since=T0 + 3 * MIN) == ["4", "3"]
        assert await messages(until=T0 + MIN) == ["0"]
        # the same instant in another timezone selects the same events
        assert await messages(since=(T0 + MIN).astimezone(NEW_YORK), until=(T0 + 3 * MIN).astimezone(NEW_YORK)) == [
            "2", "1"]
        assert await uow.events.count(EventQuery(scope=scope, since=T0 + MIN, until=T0 + 3 * MIN)) == 2


async def test_event_pages_cover_the_log_newest_first_and_count_ignores_paging(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await uow.events.add([event(scope, T0 + i * MIN, message=str(i)) for i in range(25)])
        pages = [
            [e.message for e in await uow.events.query(EventQuery(scope=scope, limit=10, offset=off))]
            for off in (0, 10, 20, 30)
        ]
        count = await uow.events.count(EventQuery(scope=scope, limit=10, offset=20))
        default_page = await uow.events.query(EventQuery(scope=scope))
    assert pages[0] == [str(i) for i in range(24, 14, -1)]
    assert pages[1] == [str(i) for i in range(14, 4, -1)]
    assert pages[2] == ["4", "3", "2", "1", "0"]
    assert pages[3] == []
    assert count == 25
    assert len(default_page) == 25


async def test_events_are_kept_apart_by_scope(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.events.add([event(f"{scope}:a", T0), event(f"{scope}:b", T0), event(f"{scope}:b", T0 + MIN)])
        assert await uow.events.count(EventQuery(scope=f"{scope}:a")) == 1
        assert {e.scope for e in await uow.events.query(EventQuery(scope=f"{scope}:b"))} == {f"{scope}:b"}
        assert await uow.events.query(EventQuery(scope=scope)) == []
        await uow.events.add([])
        assert await uow.events.count(EventQuery(scope=scope)) == 0


async def test_naive_datetimes_are_refused(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    naive = datetime(2024, 3, 4, 14, 30)  # noqa: DTZ001 - naive on purpose: every repository must refuse it
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match="timezone"):
            await uow.events.add([event(scope, naive)])
        with pytest.raises(ValueError, match="timezone"):
            await uow.events.query(EventQuery(scope=scope, since=naive))
        with pytest.raises(ValueError, match="timezone"):
            await uow.fills.add([fill(scope, 1, naive)])
        with pytest.raises(ValueError, match="timezone"):
            await uow.equity.add(scope, EquityPoint(naive, Decimal(1), Decimal(1), Decimal(0)))
        assert await uow.events.count(EventQuery(scope=scope)) == 0
        assert await uow.fills.list(scope) == []


# --- orders -------------------------------------------------------------------------------------


async def test_order_upsert_inserts_then_updates(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    new = order(scope, 1, type=OrderType.LIMIT, limit_price=Decimal("181.50"), stop_price=Decimal("170.25"),
                take_profit_price=Decimal("199.99"), time_in_force=TimeInForce.GTC, reason="breakout")
    filled = replace(new, order=replace(new.order, status=OrderStatus.FILLED, filled_qty=Decimal("10"),
                                        filled_avg_price=Decimal("181.4975")))
    async with uow_factory() as uow:
        assert await uow.orders.get(new.order.client_order_id) is None
        await uow.orders.upsert(new)
        assert await uow.orders.get(new.order.client_order_id) == new
        await uow.orders.upsert(filled)
        got = await uow.orders.get(new.order.client_order_id)
        listed = await uow.orders.list(scope)
    assert got == filled
    assert got is not None and got.order.filled_avg_price == Decimal("181.4975")
    assert listed == [filled]


async def test_orders_list_newest_first_filtered_by_status(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.orders.upsert(order(scope, 1, status=OrderStatus.FILLED, at=T0))
        await uow.orders.upsert(order(scope, 2, status=OrderStatus.NEW, at=T0 + 2 * MIN))
        await uow.orders.upsert(order(scope, 3, status=OrderStatus.PARTIALLY_FILLED, at=T0 + MIN))
        await uow.orders.upsert(order(f"{scope}:other", 4, status=OrderStatus.NEW, at=T0 + 3 * MIN))

        async def numbers(**kw: Any) -> list[str]:
            return [r.order.broker_order_id for r in await uow.orders.list(scope, **kw)]

        assert await numbers() == ["broker-2", "broker-3", "broker-1"]
        open_ = [s for s in OrderStatus if s.is_open]
        assert await numbers(status=open_) == ["broker-2", "broker-3"]
        assert await numbers(status=[OrderStatus.FILLED]) == ["broker-1"]
        assert await numbers(status=[OrderStatus.CANCELED]) == []
        assert await numbers(limit=2) == ["broker-2", "broker-3"]


async def test_an_order_id_cannot_move_to_another_scope(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    mine = order(scope, 1)
    async with uow_factory() as uow:
        await uow.orders.upsert(mine)
        with pytest.raises(ValueError, match="another scope"):
            await uow.orders.upsert(replace(mine, scope=f"{scope}:other", cycle_id=None))
        assert await uow.orders.get(mine.order.client_order_id) == mine
        assert await uow.orders.list(f"{scope}:other") == []


async def test_order_quantities_and_prices_round_trip_exactly(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    rec = order(scope, 1, qty=Decimal("0.123456789"), fractional=True, type=OrderType.LIMIT,
                limit_price=Decimal("123.4567"), stop_price=Decimal("0.0001"))
    rec = replace(rec, order=replace(rec.order, filled_qty=Decimal("0.000000001"),
                                     filled_avg_price=Decimal("123.456789012")))
    async with uow_factory() as uow:
        await uow.orders.upsert(rec)
        got = await uow.orders.get(rec.order.client_order_id)
    assert got is not None
    r = got.order.request
    assert (r.qty, r.limit_price, r.stop_price) == (Decimal("0.123456789"), Decimal("123.4567"), Decimal("0.0001"))
    assert (got.order.filled_qty, got.order.filled_avg_price) == (Decimal("0.000000001"), Decimal("123.456789012"))
    assert all(isinstance(v, Decimal) for v in (r.qty, r.limit_price, got.order.filled_qty))
    assert r.fractional is True


# --- fills --------------------------------------------------------------------------------------


async def test_the_same_fill_added_twice_is_stored_once(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    first, second = fill(scope, 1, T0), fill(scope, 1, T0 + MIN)
    async with uow_factory() as uow:
        await uow.fills.add([first, first])
        await uow.fills.add([first, second])
        await uow.fills.add([replace(first, fill=replace(first.fill, qty=Decimal("5.000")))])
        await uow.fills.add([])
        got = await uow.fills.list(scope)
    assert got == [first, second]


async def test_fills_differing_in_qty_or_price_are_distinct(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    base = fill(scope, 1, T0)
    other_qty = replace(base, fill=replace(base.fill, qty=Decimal("3")))
    other_price = replace(base, fill=replace(base.fill, price=Decimal("180.26")))
    async with uow_factory() as uow:
        await uow.fills.add([base, other_qty, other_price])
        assert len(await uow.fills.list(scope)) == 3


async def test_fills_oldest_first_in_a_half_open_time_range(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await uow.fills.add([fill(scope, n, T0 + n * MIN) for n in (3, 0, 2, 1, 4)])
        await uow.fills.add([fill(f"{scope}:other", 9, T0 + MIN)])

        async def orders_of(**kw: Any) -> list[str]:
            return [r.fill.client_order_id.rsplit(":", 1)[1] for r in await uow.fills.list(scope, **kw)]

        assert await orders_of() == ["o0", "o1", "o2", "o3", "o4"]
        assert await orders_of(since=T0 + MIN, until=T0 + 3 * MIN) == ["o1", "o2"]
        assert await orders_of(since=T0 + 3 * MIN) == ["o3", "o4"]
        assert await orders_of(until=T0 + MIN) == ["o0"]
        assert await orders_of(limit=2) == ["o0", "o1"]


async def test_shadow_fills_are_listed_only_when_asked_for(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    real, shadow = fill(scope, 1, T0), fill(scope, 2, T0 + MIN, shadow=True)
    async with uow_factory() as uow:
        await uow.fills.add([real, shadow])
        assert await uow.fills.list(scope) == [real]
        assert await uow.fills.list(scope, shadow=False) == [real]
        assert await uow.fills.list(scope, shadow=True) == [shadow]
        assert await uow.fills.list(scope, shadow=None) == [real, shadow]


async def test_fractional_fill_round_trips_exact_decimals(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    rec = fill(scope, 1, T0, qty=Decimal("0.123456789"), price=Decimal("123.4567"), fee=Decimal("0.01"), side=Side.SELL)
    async with uow_factory() as uow:
        await uow.fills.add([rec])
        (got,) = await uow.fills.list(scope)
    f = got.fill
    assert (f.qty, f.price, f.fee) == (Decimal("0.123456789"), Decimal("123.4567"), Decimal("0.01"))
    assert all(isinstance(v, Decimal) for v in (f.qty, f.price, f.fee))
    assert f.notional == Decimal("15.24")  # 0.123456789 * 123.4567 = 15.2415...
    assert f.cash_delta == Decimal("15.23")
    assert got == rec


async def test_quantities_are_never_rounded_and_floats_never_stored(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        with pytest.raises(ValueError, match="decimals"):
            await uow.fills.add([fill(scope, 1, T0, qty=Decimal("0.1234567891"))])
        with pytest.raises(TypeError):
            await uow.fills.add([fill(scope, 1, T0, price=180.25)])
        with pytest.raises(ValueError, match="decimals"):
            await uow.positions.replace_all(scope, [Position("AAPL", Decimal("1.0000000001"), Decimal(100))])
        with pytest.raises(ValueError, match="does not fit"):
            await uow.equity.add(scope, EquityPoint(T0, Decimal("1e20"), Decimal(0), Decimal(0)))
        assert await uow.fills.list(scope) == []
        assert await uow.positions.list(scope) == []


async def test_prices_beyond_their_scale_are_rounded_half_even(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    avg = (Decimal(100) * 1 + Decimal(101) * 2) / 3  # 100.666... as Portfolio.apply computes it
    async with uow_factory() as uow:
        await uow.positions.replace_all(scope, [Position("AAPL", Decimal(3), avg, stop_price=Decimal("95.12345"))])
        await uow.fills.add([fill(scope, 1, T0, price=Decimal("10.0000000005"), fee=Decimal("0.00125"))])
        (pos,) = await uow.positions.list(scope)
        (f,) = await uow.fills.list(scope)
    assert pos.avg_entry_price == Decimal("100.666666667")
    assert pos.stop_price == Decimal("95.1234")
    assert (f.fill.price, f.fill.fee) == (Decimal("10.000000000"), Decimal("0.0012"))


# --- positions ----------------------------------------------------------------------------------


async def test_positions_replace_all(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    aapl = Position("AAPL", Decimal("10"), Decimal("180.25"), stop_price=Decimal("171.24"), opened_at=T0)
    msft = Position("MSFT", Decimal("0.5"), Decimal("410.1"), fractional=True)
    tsla_short = Position("TSLA", Decimal("-3"), Decimal("200"), opened_at=T0 + MIN)
    async with uow_factory() as uow:
        assert await uow.positions.list(scope) == []
        await uow.positions.replace_all(scope, [msft, aapl])
        await uow.positions.replace_all(f"{scope}:other", [tsla_short])
        assert await uow.positions.list(scope) == [aapl, msft]
        smaller = replace(aapl, qty=Decimal("4"))
        await uow.positions.replace_all(scope, [tsla_short, smaller])
        assert await uow.positions.list(scope) == [smaller, tsla_short]
        with pytest.raises(ValueError, match="AAPL"):
            await uow.positions.replace_all(scope, [aapl, smaller])
        assert await uow.positions.list(scope) == [smaller, tsla_short]
        await uow.positions.replace_all(scope, [])
        assert await uow.positions.list(scope) == []
        assert await uow.positions.list(f"{scope}:other") == [tsla_short]


# --- equity -------------------------------------------------------------------------------------


def point(at: datetime, equity: str) -> EquityPoint:
    return EquityPoint(at, Decimal(equity), Decimal("100.50"), Decimal(equity) - Decimal("100.50"), Decimal("650"))


async def test_equity_points_oldest_first_in_a_half_open_range(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    points = [point(T0 + i * MIN, f"{650 + i}.25") for i in range(5)]
    async with uow_factory() as uow:
        for p in (points[3], points[0], points[4], points[1], points[2]):
            await uow.equity.add(scope, p)
        await uow.equity.add(f"{scope}:other", point(T0, "1"))
        assert await uow.equity.list(scope) == points
        assert await uow.equity.list(scope, since=T0 + MIN, until=T0 + 3 * MIN) == points[1:3]
        assert await uow.equity.list(scope, since=T0 + 4 * MIN) == points[4:]
        assert await uow.equity.list(scope, until=T0) == []
        corrected = point(T0 + 2 * MIN, "700.00")
        await uow.equity.add(scope, corrected)
        assert await uow.equity.list(scope) == [*points[:2], corrected, *points[3:]]
        assert (await uow.equity.list(scope))[2].net_deposits == Decimal("650")


# --- cycles -------------------------------------------------------------------------------------


async def test_cycles_upsert_get_and_last(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    first = CycleRecord(f"{scope}:c1", scope, "trade", T0, "running", symbol="AAPL")
    second = CycleRecord(f"{scope}:c2", scope, "trade", T0 + MIN, "running")
    async with uow_factory() as uow:
        assert await uow.cycles.last(scope) is None
        assert await uow.cycles.get(first.id) is None
        await uow.cycles.upsert(second)
        await uow.cycles.upsert(first)
        assert await uow.cycles.get(first.id) == first
        assert await uow.cycles.last(scope) == second
        done = replace(second, status="completed", summary={"orders": 2, "pnl": Decimal("1.50")}, error=None)
        await uow.cycles.upsert(done)
        failed = replace(first, status="failed", error="broker timeout")
        await uow.cycles.upsert(failed)
        assert await uow.cycles.get(second.id) == replace(done, summary={"orders": 2, "pnl": "1.50"})
        assert await uow.cycles.get(first.id) == failed
        assert (await uow.cycles.last(scope)) == replace(done, summary={"orders": 2, "pnl": "1.50"})
        with pytest.raises(ValueError, match="another scope"):
            await uow.cycles.upsert(replace(first, scope=f"{scope}:other"))
        assert await uow.cycles.last(f"{scope}:other") is None


# --- state documents ----------------------------------------------------------------------------


async def test_state_documents_save_load_replace(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        assert await uow.state.load(scope, "breaker") is None
        await uow.state.save(scope, "breaker", {"tripped": True, "losses": [1, 2], "since": T0}, at=T0)
        await uow.state.save(scope, "pause", {"paused": False}, at=T0)
        await uow.state.save(f"{scope}:other", "breaker", {"tripped": False}, at=T0)
        doc = await uow.state.load(scope, "breaker")
        assert doc == {"tripped": True, "losses": [1, 2], "since": T0.isoformat()}
        assert doc is not None
        doc["losses"].append(3)
        assert await uow.state.load(scope, "breaker") == {"tripped": True, "losses": [1, 2], "since": T0.isoformat()}
        await uow.state.save(scope, "breaker", {"tripped": False}, at=T0 + MIN)
        assert await uow.state.load(scope, "breaker") == {"tripped": False}
        assert await uow.state.load(scope, "pause") == {"paused": False}
        assert await uow.state.load(f"{scope}:other", "breaker") == {"tripped": False}
        with pytest.raises(ValueError, match="state document 'bad' is not storable as JSON"):
            await uow.state.save(scope, "bad", {"x": float("nan")}, at=T0)
        assert await uow.state.load(scope, "bad") is None


async def test_the_latest_state_document_of_a_name_among_scopes_with_a_prefix(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    prefix = f"{scope}:run:"
    async with uow_factory() as uow:
        assert await uow.state.latest("summary", scope_prefix=prefix) is None
        await uow.state.save(f"{prefix}b", "summary", {"run": "b"}, at=T0 + 2 * MIN)
        await uow.state.save(f"{prefix}a", "summary", {"run": "a"}, at=T0 + MIN)
        await uow.state.save(f"{prefix}c", "other", {"run": "c"}, at=T0 + 5 * MIN)
        await uow.state.save(f"{scope}:runx", "summary", {"run": "x"}, at=T0 + 9 * MIN)
        await uow.state.save(f"{scope}:run_z", "summary", {"run": "wildcard"}, at=T0 + 9 * MIN)
        got = await uow.state.latest("summary", scope_prefix=prefix)
        assert got is not None and (got.scope, got.name, got.value) == (f"{prefix}b", "summary", {"run": "b"})
        assert got.saved_at == T0 + 2 * MIN
        await uow.state.save(f"{prefix}a", "summary", {"run": "a2"}, at=T0 + 3 * MIN)
        got = await uow.state.latest("summary", scope_prefix=prefix)
        assert got is not None and got.value == {"run": "a2"}
        await uow.state.save(f"{prefix}d", "summary", {"run": "d"}, at=T0 + 3 * MIN)
        got = await uow.state.latest("summary", scope_prefix=prefix)
        assert got is not None and got.scope == f"{prefix}d"          # a tie goes to the greatest scope
        got = await uow.state.latest("summary", scope_prefix=f"{scope}:run_")
        assert got is not None and got.value == {"run": "wildcard"}    # "_" is a character, not a wildcard


# --- llm calls ----------------------------------------------------------------------------------


async def test_llm_spend_in_a_half_open_range_and_calls_newest_first(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        assert await uow.llm_calls.spend(scope, since=T0, until=T0 + 60 * MIN) == 0.0
        await uow.llm_calls.add(llm_call(scope, T0, 0.0125, cycle_id="c1", request_hash="h1"))
        await uow.llm_calls.add(llm_call(scope, T0 + 2 * MIN, 0.5, ok=False, error="timeout"))
        await uow.llm_calls.add(llm_call(scope, T0 + MIN, 0.25))
        await uow.llm_calls.add(llm_call(f"{scope}:other", T0 + MIN, 10.0))
        spend = uow.llm_calls.spend
        assert await spend(scope, since=T0, until=T0 + 3 * MIN) == pytest.approx(0.7625)
        assert await spend(scope, since=T0, until=T0 + 2 * MIN) == pytest.approx(0.2625)
        assert await spend(scope, since=T0 + MIN, until=T0 + 2 * MIN) == pytest.approx(0.25)
        assert await spend(scope, since=T0 + 3 * MIN, until=T0 + 9 * MIN) == 0.0
        calls = await uow.llm_calls.list(scope)
        assert [c.at for c in calls] == [T0 + 2 * MIN, T0 + MIN, T0]
        assert calls[0].ok is False and calls[0].error == "timeout"
        assert calls[2] == llm_call(scope, T0, 0.0125, cycle_id="c1", request_hash="h1")
        assert [c.at for c in await uow.llm_calls.list(scope, limit=1)] == [T0 + 2 * MIN]


# --- unit of work -------------------------------------------------------------------------------


async def write_everything(uow: UnitOfWork, scope: str, tag: str) -> None:
    """One row in every repository; `tag` makes the rows of two calls different."""
    n = len(tag)
    await uow.events.add([event(scope, T0, message=tag)])
    await uow.orders.upsert(replace(order(scope, n), order=replace(order(scope, n).order, broker_order_id=tag)))
    await uow.fills.add([fill(scope, n, T0, reason=tag)])
    await uow.positions.replace_all(scope, [Position(f"S{n}", Decimal(n), Decimal("10"))])
    await uow.equity.add(scope, point(T0, f"{600 + n}"))
    await uow.cycles.upsert(CycleRecord(f"{scope}:cycle", scope, "trade", T0, tag))
    await uow.state.save(scope, "doc", {"tag": tag}, at=T0)
    await uow.llm_calls.add(llm_call(scope, T0, 0.01, error=tag))


async def read_everything(uow: UnitOfWork, scope: str) -> dict[str, Any]:
    return {
        "events": [e.message for e in await uow.events.query(EventQuery(scope=scope))],
        "orders": sorted(r.order.broker_order_id for r in await uow.orders.list(scope)),
        "fills": sorted(r.fill.reason for r in await uow.fills.list(scope)),
        "positions": [p.symbol for p in await uow.positions.list(scope)],
        "equity": [p.equity for p in await uow.equity.list(scope)],
        "cycle": getattr(await uow.cycles.get(f"{scope}:cycle"), "status", None),
        "state": await uow.state.load(scope, "doc"),
        "llm": sorted(str(c.error) for c in await uow.llm_calls.list(scope)),
        "spend": await uow.llm_calls.spend(scope, since=T0, until=T0 + MIN),
    }


EMPTY = {
    "events": [], "orders": [], "fills": [], "positions": [], "equity": [], "cycle": None, "state": None, "llm": [],
    "spend": 0.0,
}


async def test_leaving_the_block_without_commit_rolls_everything_back(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await write_everything(uow, scope, "a")
        assert (await read_everything(uow, scope))["state"] == {"tag": "a"}
    async with uow_factory() as uow:
        assert await read_everything(uow, scope) == EMPTY


async def test_committed_data_survives_the_unit_of_work(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await write_everything(uow, scope, "a")
        await uow.commit()
    async with uow_factory() as uow:
        got = await read_everything(uow, scope)
    assert got == {
        "events": ["a"], "orders": ["a"], "fills": ["a"], "positions": ["S1"], "equity": [Decimal("601")],
        "cycle": "a", "state": {"tag": "a"}, "llm": ["a"], "spend": pytest.approx(0.01),
    }


async def test_rollback_restores_updated_rows_to_their_committed_values(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await write_everything(uow, scope, "a")
        await uow.commit()
    async with uow_factory() as uow:
        committed = await read_everything(uow, scope)
        await write_everything(uow, scope, "c")  # same keys as "a": updates order, cycle, state; fill is ignored
        await write_everything(uow, scope, "bb")  # replaces positions, the equity point, cycle and state again
        changed = await read_everything(uow, scope)
        assert changed != committed
        await uow.rollback()
        assert await read_everything(uow, scope) == committed
    async with uow_factory() as uow:
        assert await read_everything(uow, scope) == committed


async def test_an_exception_inside_the_block_rolls_back_and_propagates(
    uow_factory: UnitOfWorkFactory, scope: str
) -> None:
    async with uow_factory() as uow:
        await write_everything(uow, scope, "a")
        await uow.commit()

    async def fail_after_writing() -> None:
        async with uow_factory() as uow:
            await write_everything(uow, scope, "bb")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail_after_writing()
    async with uow_factory() as uow:
        got = await read_everything(uow, scope)
    assert got["events"] == ["a"] and got["orders"] == ["a"] and got["state"] == {"tag": "a"}
    assert got["positions"] == ["S1"] and got["cycle"] == "a" and got["llm"] == ["a"]


async def test_work_after_a_rollback_can_still_be_committed(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        await write_everything(uow, scope, "a")
        await uow.rollback()
        await write_everything(uow, scope, "bb")
        await uow.commit()
        await write_everything(uow, scope, "ccc")
    async with uow_factory() as uow:
        got = await read_everything(uow, scope)
    assert got["events"] == ["bb"] and got["orders"] == ["bb"] and got["positions"] == ["S2"]
    assert got["state"] == {"tag": "bb"} and got["cycle"] == "bb" and got["equity"] == [Decimal("602")]
