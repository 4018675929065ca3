"""Crash injection on the live path: the real Alpaca adapters against the Alpaca-wire emulator. A cycle dies
before, between or after its submissions (or its connection drops after Alpaca accepted an order); the process
restarts (new adapters, start-up reconciliation) and runs the same cycle again or the next one. No order ever
reaches the broker twice, and the database ends equal to the broker (the invariants hold)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator, Fault
from adapters.inmemory.market_data import SyntheticMarket
from application.cycle.trading_cycle import cycle_id_for
from application.invariants import InvariantChecker
from entrypoints.container import Container, build_container
from entrypoints.live import LiveApp, build_live_app
from entrypoints.rehearsal import KEY, SECRET, rehearsal_settings
from entrypoints.settings import load_settings
from tests.support.crash import CrashingBroker, CrashingCommit

pytestmark = pytest.mark.integration
CAL = NyseCalendar()
SESSIONS = CAL.sessions(date(2024, 3, 1), date(2024, 6, 28))
MARKET = SyntheticMarket(seed=3, n_symbols=12, start=date(2023, 1, 23), end=date(2024, 6, 28), calendar=CAL)
SCOPE = "live"


def emulator() -> AlpacaEmulator:
    return AlpacaEmulator(MARKET, CAL, CAL.session_open(SESSIONS[0]) - timedelta(hours=1), Decimal(650),
                          api_key=KEY, secret_key=SECRET, id_seed=1).start()


async def live_app(emu: AlpacaEmulator, container: Container) -> LiveApp:
    """A process of the live stack on the emulator (a restart builds a new one on the same database)."""
    return await build_live_app(rehearsal_settings(load_settings(env="test"), emu.url), container, clock=emu.clock)


_PROBED: list[date] = []


async def _probe_day() -> date:
    """The first session whose opening cycle sends at least two orders (computed once per module)."""
    if _PROBED:
        return _PROBED[0]
    emu = emulator()
    try:
        live = await live_app(emu, build_container(load_settings(env="test"), "test"))
        for day in SESSIONS:
            at = CAL.session_open(day) + timedelta(minutes=5)
            emu.advance_to(at)
            if (await live.run_cycle(as_of=at)).orders >= 2:
                _PROBED.append(day)
                await live.close()
                return day
    finally:
        emu.stop()
    raise AssertionError("no session with two orders")


@pytest.mark.parametrize("point", ["before_first_submit", "between_submits", "before_commit", "dropped_connection"])
@pytest.mark.parametrize("restart", ["same_cycle_retried", "next_cycle"])
async def test_no_order_reaches_the_broker_twice_and_the_database_ends_equal_to_it(point: str, restart: str) -> None:
    day = await _probe_day()
    emu = emulator()
    try:
        container = build_container(load_settings(env="test"), "test")
        checker = InvariantChecker(None, container.uow_factory(), SCOPE, emu.clock.now())  # type: ignore[arg-type]
        at = CAL.session_open(day) + timedelta(minutes=5)
        emu.advance_to(at)
        first = await live_app(emu, container)
        checker.broker = first.broker
        commit = CrashingCommit(first.cycle._uow_factory)  # type: ignore[attr-defined]
        first.cycle._uow_factory = commit  # type: ignore[attr-defined]
        if point == "before_commit":
            commit.armed = True
        elif point == "dropped_connection":
            emu.inject(Fault("drop_after_accept", method="POST", path="/v2/orders", times=1))
        else:
            first.cycle._broker = CrashingBroker(first.broker, point)  # type: ignore[attr-defined]
        cid = cycle_id_for(SCOPE, at, "scheduled")
        crashed = await first.run_cycle(as_of=at, cycle_id=cid)
        if point == "dropped_connection":  # the adapter looked the order up instead of sending it again
            assert crashed.status == "completed", crashed.error
            assert [r for r in emu.requests if r.path == "/v2/orders:by_client_order_id"], "no lookup after the drop"
        else:
            assert crashed.status == "failed" and "killed" in (crashed.error or "")
        await first.close()

        restarted = await live_app(emu, container)  # a new process: new adapters, start-up reconciliation
        await restarted.reconcile_now()
        later = at if restart == "same_cycle_retried" else at + timedelta(minutes=30)
        emu.advance_to(later)
        again = await restarted.run_cycle(as_of=later, cycle_id=cid if restart == "same_cycle_retried" else None)
        assert again.status == "completed", again.error
        ids = [o.client_order_id for o in emu.exchange.orders()]
        assert len(ids) == len(set(ids)), "a client order id reached the broker twice"
        entries = [o.symbol for o in emu.exchange.orders() if o.parent_id is None and o.side.value == "buy"]
        assert len(entries) == len(set(entries)), "the same entry was bought twice"
        emu.advance_to(later + timedelta(minutes=30))  # what was sent has filled; the next cycle books it
        final = await restarted.run_cycle(as_of=later + timedelta(minutes=30))
        checker.broker = restarted.broker
        assert await checker.check(datetime.now().astimezone(), final.outcomes) == []
        await restarted.close()
    finally:
        emu.stop()
