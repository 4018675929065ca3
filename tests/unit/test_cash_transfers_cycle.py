"""Deposits and withdrawals in the trading cycle: booked once, kept in net_deposits, never a gain or a loss for
the circuit breaker or the day's start."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from application.cycle.trading_cycle import BREAKER_DOC
from domain import breaker as brk
from domain.events import EventType
from domain.ports.repositories import EventQuery
from tests.support.world import CALENDAR, World, make_world, run_day

D1, D2, D3 = CALENDAR.sessions(date(2024, 3, 1), date(2024, 3, 8))[:3]
CENT = Decimal("0.01")


async def transfer_events(world: World) -> list[Any]:
    async with world.uow_factory() as uow:
        return list(await uow.events.query(EventQuery(scope=world.app.cycle.scope, types=(EventType.CASH_TRANSFER,),
                                                      limit=100)))


async def breaker(world: World) -> brk.BreakerState:
    async with world.uow_factory() as uow:
        return brk.BreakerState.from_dict(await uow.state.load(world.app.cycle.scope, BREAKER_DOC) or {})


async def last_net_deposits(world: World) -> Decimal:
    async with world.uow_factory() as uow:
        return Decimal((await uow.equity.list(world.app.cycle.scope))[-1].net_deposits)


def withdraw_share(world: World, share: str, at: Any) -> Decimal:
    broker = world.app.broker
    amount = Decimal((broker.equity() * Decimal(share)).quantize(CENT))
    assert amount <= broker.cash, "the world must hold enough cash for the withdrawal"
    broker.deposit(-amount, at)
    return amount


async def test_a_deposit_is_booked_once_into_net_deposits_and_the_event_log() -> None:
    world = await make_world()
    world.app.broker.deposit(Decimal(100), CALENDAR.session_open(D1) - timedelta(hours=1))
    await run_day(world, D1)
    assert await last_net_deposits(world) == 0, "money moved before the first cycle is starting equity"

    world.app.broker.deposit(Decimal("250.50"), CALENDAR.session_close(D1) + timedelta(hours=2))
    await run_day(world, D2)
    await world.app.cycle.run(as_of=CALENDAR.session_close(D2) + timedelta(minutes=5), kind="event")
    await run_day(world, D3)

    events = await transfer_events(world)
    assert [(e.payload["kind"], e.payload["amount"], e.payload["net_deposits"]) for e in events] == [
        ("CSD", "250.50", "250.50")]
    assert "deposit of $250.50 in" in events[0].message
    assert await last_net_deposits(world) == Decimal("250.50")


async def test_a_30pct_withdrawal_overnight_trips_neither_drawdown_nor_daily_loss() -> None:
    world = await make_world()
    await run_day(world, D1)
    withdraw_share(world, "0.30", CALENDAR.session_close(D1) + timedelta(hours=3))

    await run_day(world, D2)

    state = await breaker(world)
    assert state.status is brk.BreakerStatus.ACTIVE, state.trip_reason
    assert await last_net_deposits(world) < 0


async def test_the_same_drop_unbooked_is_a_loss_and_trips_the_breaker() -> None:
    world = await make_world()

    async def hidden(since: Any) -> list[Any]:
        return []

    world.app.broker.cash_transfers_since = hidden
    await run_day(world, D1)
    withdraw_share(world, "0.30", CALENDAR.session_close(D1) + timedelta(hours=3))

    await run_day(world, D2)

    state = await breaker(world)
    assert state.status is brk.BreakerStatus.TRIPPED and state.trip_trigger == "drawdown"


async def test_a_withdrawal_during_the_day_is_not_a_daily_loss_at_the_close() -> None:
    world = await make_world()
    await run_day(world, D1)
    app = world.app
    app.clock.set(CALENDAR.session_open(D2))
    app.broker.on_session_open(D2, app.market.opens_on(D2))
    await app.cycle.run(as_of=CALENDAR.session_open(D2))
    withdraw_share(world, "0.10", CALENDAR.session_open(D2) + timedelta(hours=2))
    app.clock.set(CALENDAR.session_close(D2))
    app.broker.on_session_close(D2, app.market.ohlc_on(D2))

    await app.cycle.reconcile(as_of=CALENDAR.session_close(D2))

    state = await breaker(world)
    assert state.status is brk.BreakerStatus.ACTIVE, state.trip_reason
    assert len(await transfer_events(world)) == 1
