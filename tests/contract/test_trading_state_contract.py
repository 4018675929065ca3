"""Contract of `TradingStateRepository` (uow.trading) and `UnitOfWork.lock_cycles`, on both backends.

Every test runs on the in-memory repositories and on PostgreSQL, in a scope of its own.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.ports.repositories import TradingStateRepository
from domain.ports.uow import UnitOfWorkFactory
from domain.trading_state import (
    ControlState,
    DayStart,
    FillCursor,
    OpenTrade,
    PendingEntry,
    StopKeeper,
    TradingState,
)

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NEW_YORK = timezone(timedelta(hours=-5))
HOUR = timedelta(hours=1)


def trade(symbol: str, **kw: object) -> OpenTrade:
    fields: dict[str, object] = {
        "qty": Decimal(10), "entry_price": Decimal("180.25"), "opened_at": T0, "stop_price": Decimal("171.24"),
        "take_profit_price": None, "stop_keeper": StopKeeper.BROKER, "entry_client_order_id": f"entry-{symbol}",
    }
    return OpenTrade(symbol=symbol, **{**fields, **kw})  # type: ignore[arg-type]


def pending(client_order_id: str, **kw: object) -> PendingEntry:
    fields: dict[str, object] = {
        "symbol": "NVDA", "qty": Decimal(2), "stop_price": Decimal("850.5"), "take_profit_price": None,
        "fractional": False, "submitted_at": T0,
    }
    return PendingEntry(client_order_id=client_order_id, **{**fields, **kw})  # type: ignore[arg-type]


def full_state(scope: str) -> TradingState:
    """A state with every field set to a value that is not its default (client order ids are unique per scope:
    the database is shared by the whole test session)."""
    aapl = trade("AAPL", qty=Decimal("0.123456789"), entry_price=Decimal("180.123456789"),
                 opened_at=datetime(2024, 3, 4, 9, 31, 15, 250000, tzinfo=NEW_YORK), stop_price=Decimal("171.2345"),
                 take_profit_price=Decimal("199.9999"), stop_keeper=StopKeeper.QUORUM,
                 entry_client_order_id="q-c1-AAPL", entry_broker_order_id="b-1", leg_ids=("leg-stop", "leg-tp"),
                 memory_id=9_000_000_001, cycle_id="c1", adopted=True)
    msft = trade("MSFT", stop_price=None)
    entries = [
        pending(f"{scope}:q-c2-NVDA", cycle_id="c2", broker_order_id="b-2", setup="breakout", reasoning="volume surge",
                take_profit_price=Decimal("990.0001"), fractional=True, qty=Decimal("0.5"),
                submitted_at=T0.astimezone(NEW_YORK)),
        pending(f"{scope}:q-c2-AMD", symbol="AMD", stop_price=None, submitted_at=T0 + HOUR),
    ]
    return TradingState(
        open_trades={"AAPL": aapl, "MSFT": msft},
        pending_entries={e.client_order_id: e for e in entries},
        fill_cursor=FillCursor(T0.astimezone(NEW_YORK), ("o1|2024-03-04T14:30:00+00:00|5|180.25", "o2|x|1|2")),
        day_start=DayStart(date(2024, 3, 4), Decimal("650.1234"), "first_cycle"),
        control=ControlState(True, "operator", "earnings week", T0 - HOUR),
        cooldowns={"TSLA": (T0 + 24 * HOUR).astimezone(NEW_YORK), "AMC": T0 + 2 * HOUR},
    )


async def saved_and_loaded(uow_factory: UnitOfWorkFactory, scope: str, state: TradingState) -> TradingState:
    async with uow_factory() as uow:
        await uow.trading.save(scope, state, at=T0)
        await uow.commit()
    async with uow_factory() as uow:
        return await uow.trading.load(scope)


async def test_the_unit_of_work_holds_a_trading_state_repository(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        assert TradingStateRepository in type(uow.trading).__mro__


async def test_a_scope_with_nothing_stored_has_the_empty_state(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        got = await uow.trading.load(scope)
    assert got == TradingState()
    assert (got.fill_cursor, got.day_start, got.control) == (None, None, ControlState())


async def test_every_field_round_trips(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    state = full_state(scope)
    got = await saved_and_loaded(uow_factory, scope, state)
    assert got == state
    aapl, nvda = got.open_trades["AAPL"], got.pending_entries[f"{scope}:q-c2-NVDA"]
    assert (aapl.qty, aapl.entry_price, aapl.stop_price) == (
        Decimal("0.123456789"), Decimal("180.123456789"), Decimal("171.2345"))
    assert all(isinstance(v, Decimal) for v in (aapl.qty, aapl.entry_price, nvda.qty, got.day_start.equity))  # type: ignore[union-attr]
    assert aapl.stop_keeper is StopKeeper.QUORUM and aapl.leg_ids == ("leg-stop", "leg-tp")
    assert isinstance(aapl.leg_ids, tuple) and isinstance(got.fill_cursor.seen, tuple)  # type: ignore[union-attr]
    assert got.fill_cursor.seen == state.fill_cursor.seen  # type: ignore[union-attr]  # order kept
    times = [aapl.opened_at, nvda.submitted_at, got.fill_cursor.since, got.control.at,  # type: ignore[union-attr]
             *got.cooldowns.values()]
    assert all(t is not None and t.utcoffset() == timedelta(0) for t in times)
    assert aapl.opened_at == datetime(2024, 3, 4, 14, 31, 15, 250000, tzinfo=UTC)
    assert got.open_trades["MSFT"] == trade("MSFT", stop_price=None)  # defaults come back as defaults


async def test_values_are_stored_as_their_columns_hold_them(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    state = TradingState(
        open_trades={"AAPL": trade("AAPL", entry_price=Decimal("10.0000000005"), stop_price=Decimal("95.12345"),
                                   take_profit_price=Decimal("120.00015"))},
        day_start=DayStart(date(2024, 3, 4), Decimal("650.00005")),
    )
    got = await saved_and_loaded(uow_factory, scope, state)
    t = got.open_trades["AAPL"]
    assert (t.entry_price, t.stop_price, t.take_profit_price) == (
        Decimal("10.000000000"), Decimal("95.1234"), Decimal("120.0002"))   # half-even to the column's scale
    assert got.day_start == DayStart(date(2024, 3, 4), Decimal("650.0000"), "previous_close")


async def test_inexact_quantities_floats_and_naive_times_are_refused(
        uow_factory: UnitOfWorkFactory, scope: str) -> None:
    naive = datetime(2024, 3, 4, 14, 30)  # noqa: DTZ001 - naive on purpose: saving it must be refused
    bad = [
        (ValueError, "decimals", TradingState(open_trades={"AAPL": trade("AAPL", qty=Decimal("1.0000000001"))})),
        (ValueError, "decimals", TradingState(pending_entries={"p": pending("p", qty=Decimal("0.0000000001"))})),
        (TypeError, "Decimal", TradingState(open_trades={"AAPL": trade("AAPL", entry_price=180.25)})),
        (TypeError, "Decimal", TradingState(day_start=DayStart(date(2024, 3, 4), 650.0))),  # type: ignore[arg-type]
        (ValueError, "timezone", TradingState(open_trades={"AAPL": trade("AAPL", opened_at=naive)})),
        (ValueError, "timezone", TradingState(cooldowns={"AAPL": naive})),
        (ValueError, "timezone", TradingState(fill_cursor=FillCursor(naive))),
        (ValueError, "timezone", TradingState(control=ControlState(True, "op", "", naive))),
        (ValueError, "stored under", TradingState(open_trades={"MSFT": trade("AAPL")})),
        (ValueError, "stored under", TradingState(pending_entries={"other": pending("p")})),
    ]
    async with uow_factory() as uow:
        await uow.trading.save(scope, TradingState(control=ControlState(True, "op")), at=T0)
        for error, match, state in bad:
            with pytest.raises(error, match=match):
                await uow.trading.save(scope, state, at=T0)
        with pytest.raises(ValueError, match="timezone"):
            await uow.trading.save(scope, TradingState(), at=naive)
        assert await uow.trading.load(scope) == TradingState(control=ControlState(True, "op"))


async def test_save_replaces_the_whole_state(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    first = full_state(scope)
    smaller = TradingState(
        open_trades={"AAPL": replace(first.open_trades["AAPL"], qty=Decimal(3), leg_ids=(), memory_id=None)},
        pending_entries={f"{scope}:q-c3-AMD": pending(f"{scope}:q-c3-AMD", symbol="AMD")},
        cooldowns={"TSLA": T0},
    )
    await saved_and_loaded(uow_factory, scope, first)
    kept = first.control  # the pause switch is not saved over: only set_control changes it
    assert await saved_and_loaded(uow_factory, scope, smaller) == replace(smaller, control=kept)  # MSFT... gone
    assert await saved_and_loaded(uow_factory, scope, TradingState()) == TradingState(control=kept)


async def test_a_pause_survives_a_save_by_a_cycle_that_loaded_before_it(uow_factory: UnitOfWorkFactory,
                                                                        scope: str) -> None:
    async with uow_factory() as uow:
        before_pause = await uow.trading.load(scope)       # a cycle starts, trading not paused
    async with uow_factory() as uow:
        await uow.trading.set_control(scope, ControlState(True, "ops", "news", T0), at=T0)
        await uow.commit()
    cycle_result = replace(before_pause, open_trades={"AAPL": trade("AAPL")})
    got = await saved_and_loaded(uow_factory, scope, cycle_result)  # the cycle saves what it did
    assert got.control == ControlState(True, "ops", "news", T0)
    assert set(got.open_trades) == {"AAPL"}


async def test_set_control_leaves_the_rest_of_the_state_alone(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    first = full_state(scope)
    await saved_and_loaded(uow_factory, scope, first)
    async with uow_factory() as uow:
        await uow.trading.set_control(scope, ControlState(False, "ops", "", T0), at=T0)
        await uow.commit()
    async with uow_factory() as uow:
        got = await uow.trading.load(scope)
    assert got == replace(first, control=ControlState(False, "ops", "", T0))


async def test_scopes_are_kept_apart(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    a, b = f"{scope}:a", f"{scope}:b"
    state_a = full_state(scope)
    state_b = TradingState(open_trades={"AAPL": trade("AAPL", qty=Decimal(1))}, cooldowns={"AAPL": T0})
    async with uow_factory() as uow:
        await uow.trading.save(a, state_a, at=T0)
        await uow.trading.save(b, state_b, at=T0)
        await uow.trading.save(b, TradingState(), at=T0)      # replacing b leaves a alone
        assert await uow.trading.load(a) == state_a
        assert await uow.trading.load(b) == TradingState()
        assert await uow.trading.load(scope) == TradingState()


async def test_a_pending_entry_belongs_to_one_scope(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    mine = TradingState(pending_entries={f"{scope}:q-1": pending(f"{scope}:q-1")})
    theirs = TradingState(control=ControlState(True, "op"))
    async with uow_factory() as uow:
        await uow.trading.save(scope, mine, at=T0)
        await uow.trading.save(f"{scope}:other", theirs, at=T0)
        with pytest.raises(ValueError, match="another scope"):
            await uow.trading.save(f"{scope}:other", replace(theirs, pending_entries=mine.pending_entries), at=T0)
        assert await uow.trading.load(f"{scope}:other") == theirs
        assert await uow.trading.load(scope) == mine
        await uow.trading.save(scope, mine, at=T0)                 # saving it again in its own scope is fine
        assert await uow.trading.load(scope) == mine


async def test_rollback_undoes_a_save(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    kept = full_state(scope)
    async with uow_factory() as uow:
        await uow.trading.save(scope, kept, at=T0)
        await uow.commit()
    async with uow_factory() as uow:
        await uow.trading.save(scope, TradingState(cooldowns={"AAPL": T0}), at=T0 + HOUR)
        await uow.rollback()
        assert await uow.trading.load(scope) == kept
        await uow.trading.save(scope, TradingState(), at=T0 + HOUR)     # and leaving without commit rolls back
    async with uow_factory() as uow:
        assert await uow.trading.load(scope) == kept
    async with uow_factory() as uow:                                     # even the first save of a scope
        await uow.trading.save(f"{scope}:new", full_state(f"{scope}:new"), at=T0)
    async with uow_factory() as uow:
        assert await uow.trading.load(f"{scope}:new") == TradingState()


async def test_lock_cycles_is_granted_to_an_open_unit_of_work(uow_factory: UnitOfWorkFactory, scope: str) -> None:
    async with uow_factory() as uow:
        assert await uow.lock_cycles(scope, wait_seconds=0)
        assert await uow.lock_cycles(scope, wait_seconds=1)             # taking it again in the same transaction
        with pytest.raises(ValueError, match="wait_seconds"):
            await uow.lock_cycles(scope, wait_seconds=-1)
        with pytest.raises(ValueError, match="wait_seconds"):
            await uow.lock_cycles(scope, wait_seconds=float("nan"))
        await uow.commit()
        assert await uow.lock_cycles(scope, wait_seconds=0)             # a new transaction after the commit
    with pytest.raises(RuntimeError, match="not open"):
        await uow_factory().lock_cycles(scope, wait_seconds=0)
