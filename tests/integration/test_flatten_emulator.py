"""The kill switch through the real Alpaca adapters against the emulator: legs cancelled first (Alpaca would
refuse a sell of shares its stop holds), positions closed at market, or queued for the open when it is closed."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from adapters.inmemory.alpaca_emulator import AlpacaEmulator
from adapters.inmemory.market_data import SyntheticMarket
from application.flatten import flatten
from domain.events import EventType
from domain.ports.repositories import EventQuery
from entrypoints.container import Container, close_container
from tests.integration.test_crash_recovery_emulator import CAL, SESSIONS
from tests.support.emulated import KEY, SECRET, live_on

pytestmark = pytest.mark.integration
WHOLE_SHARES = SyntheticMarket(seed=3, n_symbols=12, start=date(2023, 1, 23), end=date(2024, 6, 28), calendar=CAL,
                               default_fractionable=False)


def emulator() -> AlpacaEmulator:
    return AlpacaEmulator(WHOLE_SHARES, CAL, CAL.session_open(SESSIONS[0]) - timedelta(hours=1), Decimal(650),
                          api_key=KEY, secret_key=SECRET, id_seed=2).start()


async def _holding(emu: AlpacaEmulator, live: Container) -> int:
    for i, day in enumerate(SESSIONS):
        at = CAL.session_open(day) + timedelta(minutes=5)
        emu.advance_to(at)
        await live.runner().run_cycle(as_of=at)
        emu.advance_to(at + timedelta(minutes=30))
        await live.runner().run_cycle(as_of=at + timedelta(minutes=30))
        if await live.broker().positions():
            return i
    raise AssertionError("never held a position")


@pytest.mark.parametrize("market_open", [True, False])
async def test_flatten_closes_everything_through_the_alpaca_adapters(market_open: bool) -> None:
    emu = emulator()
    live = live_on(emu)
    broker, scope = live.broker(), live.scope()
    try:
        i = await _holding(emu, live)
        held = {p.symbol for p in await broker.positions()}
        assert any(o.is_leg for o in await broker.open_orders()), "whole-share entries carry stop legs"
        at = emu.clock.now() + timedelta(minutes=10) if market_open else CAL.session_close(SESSIONS[i]) + timedelta(
            hours=1)
        emu.advance_to(at)
        result = await flatten(live.uow_factory(), broker, CAL, scope=scope, as_of=at, by="ops")
        assert not result.failed, result.failed
        assert {o.symbol for o in result.sells} == held and result.market_open is market_open
        assert ("queued for the next market open" in result.message) is not market_open
        assert all(o.request.side.value == "sell" and not o.is_leg for o in await broker.open_orders())
        emu.advance_to(CAL.session_open(SESSIONS[i + 1]) + timedelta(minutes=1))
        assert await broker.positions() == []
        async with live.uow_factory()() as uow:
            assert (await uow.trading.load(scope)).control.paused
            assert await uow.events.query(EventQuery(scope, types=(EventType.KILL_SWITCH,)))
    finally:
        await close_container(live)
        emu.stop()
