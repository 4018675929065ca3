"""Crash injection on the live path: the real Alpaca adapters against the Alpaca-wire emulator. A cycle dies
before, between or after its submissions (or its connection drops after Alpaca accepted an order); the process
restarts (new adapters, start-up reconciliation) and runs the same cycle again or the next one. No order ever
reaches the broker twice, and the database ends equal to the broker (the invariants hold)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from dependency_injector import providers

from adapters.calendar import NyseCalendar
from adapters.inmemory.alpaca_emulator import AlpacaEmulator, Fault
from adapters.inmemory.market_data import SyntheticMarket
from application.cycle.trading_cycle import cycle_id_for
from application.invariants import InvariantChecker
from entrypoints.container import close_container
from tests.support.crash import CrashingBroker, CrashingCommit
from tests.support.emulated import KEY, SECRET, live_on

pytestmark = pytest.mark.integration
CAL = NyseCalendar()
SESSIONS = CAL.sessions(date(2024, 3, 1), date(2024, 6, 28))
MARKET = SyntheticMarket(seed=3, n_symbols=12, start=date(2023, 1, 23), end=date(2024, 6, 28), calendar=CAL)
SCOPE = "live"


def emulator() -> AlpacaEmulator:
    return AlpacaEmulator(MARKET, CAL, CAL.session_open(SESSIONS[0]) - timedelta(hours=1), Decimal(650),
                          api_key=KEY, secret_key=SECRET, id_seed=1).start()


_PROBED: list[date] = []


async def _probe_day() -> date:
    """The first session whose opening cycle sends at least two orders (computed once per module)."""
    if _PROBED:
        return _PROBED[0]
    emu = emulator()
    probe = live_on(emu)
    try:
        for day in SESSIONS:
            at = CAL.session_open(day) + timedelta(minutes=5)
            emu.advance_to(at)
            if (await probe.runner().run_cycle(as_of=at)).orders >= 2:
                _PROBED.append(day)
                return day
    finally:
        await close_container(probe)
        emu.stop()
    raise AssertionError("no session with two orders")


@pytest.mark.parametrize("point", ["before_first_submit", "between_submits", "before_commit", "dropped_connection"])
@pytest.mark.parametrize("restart", ["same_cycle_retried", "next_cycle"])
async def test_no_order_reaches_the_broker_twice_and_the_database_ends_equal_to_it(point: str, restart: str) -> None:
    day = await _probe_day()
    emu = emulator()
    try:
        first = live_on(emu)  # the first process
        at = CAL.session_open(day) + timedelta(minutes=5)
        emu.advance_to(at)
        commit = CrashingCommit(first.uow_factory())
        first.uow_factory.override(providers.Object(commit))
        if point == "before_commit":
            commit.armed = True
        elif point == "dropped_connection":
            emu.inject(Fault("drop_after_accept", method="POST", path="/v2/orders", times=1))
        else:
            first.broker.override(providers.Object(CrashingBroker(first.alpaca_broker(), point)))
        cid = cycle_id_for(SCOPE, at, "scheduled", tz=CAL.tz)
        crashed = await first.runner().run_cycle(as_of=at, cycle_id=cid)
        if point == "dropped_connection":  # the adapter looked the order up instead of sending it again
            assert crashed.status == "completed", crashed.error
            assert [r for r in emu.requests if r.path == "/v2/orders:by_client_order_id"], "no lookup after the drop"
        else:
            assert crashed.status == "failed" and "killed" in (crashed.error or "")
        await close_container(first)

        restarted = live_on(emu, database=first.memory_db())  # a new process: new adapters, same database
        await restarted.runner().reconcile_now()
        later = at if restart == "same_cycle_retried" else at + timedelta(minutes=30)
        emu.advance_to(later)
        again = await restarted.runner().run_cycle(as_of=later,
                                                   cycle_id=cid if restart == "same_cycle_retried" else None)
        assert again.status == "completed", again.error
        ids = [o.client_order_id for o in emu.exchange.orders()]
        assert len(ids) == len(set(ids)), "a client order id reached the broker twice"
        entries = [o.symbol for o in emu.exchange.orders() if o.parent_id is None and o.side.value == "buy"]
        assert len(entries) == len(set(entries)), "the same entry was bought twice"
        emu.advance_to(later + timedelta(minutes=30))  # what was sent has filled; the next cycle books it
        final = await restarted.runner().run_cycle(as_of=later + timedelta(minutes=30))
        checker = InvariantChecker(restarted.broker(), restarted.uow_factory(), SCOPE, CAL.session_open(SESSIONS[0]))
        assert await checker.check(final.as_of, final.outcomes) == []
        await close_container(restarted)
    finally:
        emu.stop()
