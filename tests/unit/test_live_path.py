"""The live path against a broker as strict as Alpaca (the in-memory broker on the shared exchange model):
each defect found by reading the cycle has a test here, and the invariants are checked after every cycle
and every close."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from adapters.calendar.nyse import NEW_YORK
from adapters.inmemory.market_data import SyntheticMarket
from adapters.llm.offline_policy import OfflinePolicyLLM
from application.control import set_paused
from application.invariants import InvariantChecker, closing_fills
from domain import breaker as brk
from domain.errors import ForbiddenError
from domain.events import EventType
from domain.models.trading import OrderType, Side, TimeInForce
from domain.ports.llm import Decision, LLMRequest, LLMUsage
from domain.ports.repositories import EventQuery
from domain.trading_state import StopKeeper
from domain.verdict import Verdict
from entrypoints.settings import load_settings
from tests.support.world import CALENDAR, World, feed_close, feed_fills, feed_open, make_world, run_day

SESSIONS = CALENDAR.sessions(date(2024, 3, 1), date(2024, 8, 30))
SCOPE = "backtest:test"


async def whole_share_world(**kw: Any) -> World:
    market = SyntheticMarket(seed=3, n_symbols=12, start=date(2023, 1, 23), end=date(2024, 8, 30), calendar=CALENDAR,
                             default_fractionable=False)
    return await make_world(market=market, end=date(2024, 8, 30), **kw)


def checker(world: World) -> InvariantChecker:
    return InvariantChecker(world.app.broker, world.uow_factory, SCOPE, CALENDAR.session_open(SESSIONS[0]))


async def state(world: World) -> Any:
    async with world.uow_factory() as uow:
        return await uow.trading.load(SCOPE)


async def events(world: World, *types: EventType) -> list[Any]:
    async with world.uow_factory() as uow:
        return await uow.events.query(EventQuery(SCOPE, types=tuple(types), limit=100_000))


async def until_held(world: World, inv: InvariantChecker | None = None, *, start: int = 0) -> int:
    """Run sessions until the broker holds a position after the close; returns the index of the next session."""
    for i in range(start, len(SESSIONS)):
        await run_day(world, SESSIONS[i], inv)
        if await world.app.broker.positions():
            return i + 1
    raise AssertionError("no position was ever opened")


class SellHeld:
    """A signal LLM that exits every held position and holds everything else."""

    provider = "test"

    def __init__(self) -> None:
        self.offline = OfflinePolicyLLM()

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        decision = await self.offline.complete(request)
        if request.agent != "signal":
            return decision
        held = {f.symbol for f in request.context.symbols if f.held_qty > 0}
        out = decision.output.model_copy(update={"proposals": [
            p.model_copy(update={"action": "SELL" if p.symbol in held else "HOLD", "confidence": 0.9})
            for p in decision.output.proposals]})
        return Decision(out, LLMUsage("test", "sell-held"))


async def test_invariants_hold_through_months_of_fractional_and_whole_share_trading() -> None:
    for world in (await make_world(end=date(2024, 8, 30)), await whole_share_world()):
        inv = checker(world)
        for day in SESSIONS[:90]:
            await run_day(world, day, inv)
        assert inv.violations == [], inv.violations[:5]
        fills = world.app.broker.fills
        assert closing_fills(fills) >= 3, "the run should close some trades for the breaker check to mean much"
        assert inv.checked >= 90 * 2 * 4


async def test_the_first_fill_sync_of_a_fresh_database_asks_from_a_real_time() -> None:
    world = await make_world()
    asked: list[datetime] = []
    real = world.app.broker.fills_since

    async def recording(since: datetime) -> Any:
        asked.append(since)
        return await real(since)

    world.app.broker.fills_since = recording  # type: ignore[method-assign]
    day = SESSIONS[0]
    feed_open(world, day)
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(day))
    assert result.status == "completed", result.error
    assert asked and asked[0] == CALENDAR.session_open(day) - timedelta(days=10)
    assert asked[0].tzinfo is not None


async def test_a_whole_share_entry_keeps_a_gtc_stop_leg_after_the_close() -> None:
    world = await whole_share_world()
    nxt = await until_held(world)
    for day in SESSIONS[nxt:nxt + 3]:
        for p in await world.app.broker.positions():
            stops = [o for o in await world.app.broker.open_orders() if o.symbol == p.symbol
                     and o.request.type is OrderType.STOP and o.request.side is Side.SELL]
            assert stops, f"{p.symbol} lost its stop at the close"
            assert all(o.request.time_in_force is TimeInForce.GTC for o in stops)
            assert sum(o.request.qty for o in stops) >= p.qty
        await run_day(world, day)
    trades = (await state(world)).open_trades
    assert trades and all(t.stop_keeper is StopKeeper.BROKER and t.leg_ids for t in trades.values())


async def test_a_fractional_fill_seen_in_a_later_cycle_keeps_the_stop_its_entry_asked_for() -> None:
    world = await make_world()
    for day in SESSIONS:
        result = await run_day(world, day)
        sent = {o.limit.order.symbol: o.limit.order for o in result.outcomes
                if o.final is Verdict.BUY and o.limit and o.limit.order and o.limit.order.fractional}
        if sent:
            break
    else:
        raise AssertionError("no fractional entry")
    assert result.orders and not any(e.payload.get("side") == "buy" for e in await events(world, EventType.ORDER_FILLED)
                                     if e.cycle_id == result.cycle_id), "fills must come after the cycle"
    trades = (await state(world)).open_trades  # booked by the reconciliation at the close
    for sym, order in sent.items():
        assert trades[sym].stop_keeper is StopKeeper.QUORUM and trades[sym].stop_price == order.stop_price


async def test_an_agent_exit_of_a_bracket_position_cancels_its_legs_first() -> None:
    world = await whole_share_world()
    inv = checker(world)
    nxt = await until_held(world, inv)
    held = {p.symbol for p in await world.app.broker.positions()}
    world.app.cycle._agents._gateway.llms = {"default": SellHeld()}  # type: ignore[attr-defined]
    result = await run_day(world, SESSIONS[nxt], inv)
    exits = [o for o in result.outcomes if o.symbol in held and o.signal.action == "SELL"]
    assert exits and all(o.final is Verdict.SELL for o in exits), [(o.symbol, o.final, o.reason) for o in exits]
    assert not await events(world, EventType.ORDER_REJECTED)
    assert not {p.symbol for p in await world.app.broker.positions()} & held
    assert inv.violations == []


class RefusingSells:
    """The broker, except that it refuses every market sell (as Alpaca does for shares held by other orders)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def submit(self, request: Any) -> Any:
        if request.side is Side.SELL and request.type is OrderType.MARKET:
            raise ForbiddenError("Alpaca refused POST /v2/orders (403); Alpaca said: account is restricted")
        return await self.inner.submit(request)


async def test_a_refused_exit_is_recorded_with_its_reason_and_the_position_gets_its_stop_back() -> None:
    world = await whole_share_world()
    nxt = await until_held(world)
    held = {p.symbol for p in await world.app.broker.positions()}
    world.app.cycle._broker = RefusingSells(world.app.broker)  # type: ignore[attr-defined]
    world.app.cycle._agents._gateway.llms = {"default": SellHeld()}  # type: ignore[attr-defined]
    feed_open(world, SESSIONS[nxt])
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(SESSIONS[nxt]))
    assert result.status == "completed", result.error
    refused = [o for o in result.outcomes if o.symbol in held and o.signal.action == "SELL"]
    assert refused and all(o.final is Verdict.REJECTED and "restricted" in o.reason for o in refused)
    inv = checker(world)
    await inv.check(result.as_of, result.outcomes)
    assert [v for v in inv.violations if v.rule in ("position_protected", "exit_accounted")] == []


async def test_a_paused_cycle_still_takes_a_quorum_kept_stop_and_asks_no_agent() -> None:
    world = await make_world()
    nxt = await until_held(world)
    sym, trade = next(iter((await state(world)).open_trades.items()))
    assert trade.stop_keeper is StopKeeper.QUORUM
    async with world.uow_factory() as uow:  # the price fell through the stop overnight
        st = await uow.trading.load(SCOPE)
        await uow.trading.save(SCOPE, st.with_trade(replace(trade, stop_price=Decimal("100000"))),
                               at=CALENDAR.session_open(SESSIONS[nxt]))
        await uow.commit()
    await set_paused(world.uow_factory, SCOPE, paused=True, by="ops", as_of=CALENDAR.session_open(SESSIONS[nxt]))

    class NoAgent:
        provider = "test"

        async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
            raise AssertionError("no agent may be asked while trading is paused")

    world.app.cycle._agents._gateway.llms = {"default": NoAgent()}  # type: ignore[attr-defined]
    result = await run_day(world, SESSIONS[nxt])
    assert result.status == "completed"
    stop_exit = [o for o in result.outcomes if o.symbol == sym]
    assert stop_exit and stop_exit[0].is_stop_exit and stop_exit[0].final is Verdict.SELL
    assert all(o.signal.action != "BUY" for o in result.outcomes)
    assert sym not in {p.symbol for p in await world.app.broker.positions()}


async def test_stop_fills_found_by_reconciliation_reach_the_breaker() -> None:
    world = await whole_share_world()
    inv = checker(world)
    for day in SESSIONS[:100]:
        await run_day(world, day, inv)
    stops = [f for f in world.app.broker.fills if f.side is Side.SELL and "stop" in f.reason.lower()]
    assert stops, "the period should see a broker stop leg fill"
    async with world.uow_factory() as uow:
        counted = brk.BreakerState.from_dict(await uow.state.load(SCOPE, "breaker") or {}).trades_counted
    assert counted == closing_fills(world.app.broker.fills) > 0
    assert [v for v in inv.violations if v.rule == "breaker_counts_each_trade_once"] == []


async def test_no_entry_in_a_symbol_for_a_day_after_its_stop_closed_it() -> None:
    world = await whole_share_world()
    for day in SESSIONS[:100]:
        await run_day(world, day)
    fills = world.app.broker.fills
    stopped = [(f.symbol, f.at) for f in fills if f.side is Side.SELL and "stop" in f.reason.lower()]
    assert stopped
    for sym, at in stopped:
        again = [f for f in fills if f.symbol == sym and f.side is Side.BUY and at < f.at < at + timedelta(hours=24)]
        assert again == [], f"{sym} re-entered within a day of its stop"


async def test_an_unfilled_entry_blocks_a_second_entry_and_its_value_counts_against_cash() -> None:
    settings = load_settings(env="test", risk={"market_hours_only": False})
    world = await make_world(settings=settings)
    for day in SESSIONS:  # cycles an hour after the close: entries wait at the broker for the next open
        feed_open(world, day)
        feed_fills(world, day)
        feed_close(world, day)
        first = CALENDAR.session_close(day) + timedelta(hours=1)
        world.app.clock.set(first)
        r1 = await world.app.cycle.run(as_of=first)
        if r1.orders:
            break
    else:
        raise AssertionError("no entry was ever sent after a close")
    waiting = [o for o in await world.app.broker.open_orders() if o.request.side is Side.BUY and not o.is_leg]
    assert waiting and all(o.filled_qty == 0 for o in waiting)
    world.app.clock.set(first + timedelta(hours=1))
    r2 = await world.app.cycle.run(as_of=first + timedelta(hours=1))
    bought = {o.symbol for o in waiting}
    assert [o for o in r2.outcomes if o.symbol in bought and o.final is Verdict.BUY] == []
    assert {o.symbol for o in r2.outcomes if o.limit and o.limit.rejected_by == "entry_pending"} == bought
    assert len([o for o in await world.app.broker.open_orders() if o.request.side is Side.BUY]) == len(waiting) + (
        r2.orders)
    account = await world.app.broker.account()
    assert account.buying_power >= 0 and account.cash == Decimal(650)


async def test_a_cycle_that_cannot_take_the_trading_lock_is_skipped() -> None:
    world = await make_world()

    class Held:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __call__(self) -> Any:
            uow = self.inner()

            async def no(scope: str, *, wait_seconds: float) -> bool:
                return False

            uow.lock_cycles = no
            return uow

    world.app.cycle._uow_factory = Held(world.uow_factory)  # type: ignore[attr-defined]
    feed_open(world, SESSIONS[0])
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(SESSIONS[0]))
    assert result.status == "skipped" and world.app.broker.all_orders() == []
    skipped = await events(world, EventType.CYCLE_SKIPPED)
    assert skipped and "trading lock" in skipped[0].message


async def test_bracket_legs_are_never_reported_as_unknown_orders() -> None:
    world = await whole_share_world()
    for day in SESSIONS[:40]:
        await run_day(world, day)
    kinds = {e.payload.get("kind") for e in await events(world, EventType.RECONCILIATION_DIFF)}
    assert "order_recovered" not in kinds and "fill_without_order" not in kinds, kinds


def test_the_day_is_measured_from_the_previous_close_so_an_overnight_gap_counts() -> None:
    from application.cycle.trading_cycle import day_start
    from domain.models.account import Account
    from domain.trading_state import TradingState

    at = CALENDAR.session_open(SESSIONS[3])
    account = Account(cash=Decimal(0), equity=Decimal(940), buying_power=Decimal(0), last_equity=Decimal(1000))
    start = day_start(TradingState(), at, account, NEW_YORK)
    assert (start.equity, start.source) == (Decimal(1000), "previous_close")
    tripped, trip = brk.record_equity(brk.initial_state(Decimal(1000)), equity=Decimal(940),
                                      day_start_equity=start.equity, as_of=at, settings=load_settings().risk.breaker)
    assert trip is not None and trip.trigger == "daily_loss" and tripped.status is brk.BreakerStatus.TRIPPED
    no_close = day_start(TradingState(), at, replace(account, last_equity=None), NEW_YORK)
    assert (no_close.equity, no_close.source) == (Decimal(940), "first_cycle")


def test_a_position_opened_on_an_earlier_day_is_no_day_trade_to_exit() -> None:
    from application.cycle.reconcile import merged_positions
    from domain.models.market import Asset
    from domain.models.trading import Position
    from domain.risk.limits import LimitContext, ProposedTrade, apply_hard_limits
    from domain.trading_state import OpenTrade, TradingState

    today = SESSIONS[5]
    at = CALENDAR.session_open(today) + timedelta(hours=1)
    broker_pos = Position("AAA", Decimal(2), Decimal(50))  # what the broker says: no opening time
    yesterday = OpenTrade("AAA", Decimal(2), Decimal(50), CALENDAR.session_open(SESSIONS[4]), Decimal(47), None,
                          StopKeeper.BROKER, "q-1")
    risk = load_settings().risk
    ctx = dict(as_of=at, market_open=True, equity=Decimal(650), cash=Decimal(550), day_start_equity=Decimal(650),
               prices={"AAA": Decimal(51)}, avg_dollar_volume={}, assets={"AAA": Asset("AAA")},
               orders_this_cycle=0, pending_exposure=Decimal(0), day_trades_used=3, today=today,
               tz=CALENDAR.session_open(today).tzinfo, entries_allowed=True)
    sell = ProposedTrade("AAA", "SELL", 0.9, 1.0, None, None, "trend broke")
    unknown = apply_hard_limits(sell, LimitContext(positions={"AAA": broker_pos}, **ctx), risk, client_order_id="x")
    assert unknown.rejected_by == "pdt"  # unknown opening time: treated as today, to be safe
    [merged] = merged_positions([broker_pos], TradingState(open_trades={"AAA": yesterday}))
    known = apply_hard_limits(sell, LimitContext(positions={"AAA": merged}, **ctx), risk, client_order_id="x")
    assert known.order is not None and known.order.side is Side.SELL


async def test_the_shadow_book_spends_only_its_own_cash_keeps_stops_and_is_cleared_on_resume() -> None:
    from application.control import approve_breaker_resume
    from application.cycle.breaker_book import load_shadow_book

    world = await make_world(end=date(2024, 8, 30))
    real = world.app.market.latest_quotes

    async def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("feed down")

    world.app.market.latest_quotes = broken  # type: ignore[method-assign]
    for day in SESSIONS[:3]:
        await run_day(world, day)
    world.app.market.latest_quotes = real  # type: ignore[method-assign]
    shadow_entries = shadow_stops = 0
    for day in SESSIONS[3:80]:
        result = await run_day(world, day)
        assert result.shadow
        async with world.uow_factory() as uow:
            book = await load_shadow_book(uow, SCOPE)
        assert book is not None and book.cash >= 0, "the shadow book never spends money it does not have"
        assert all(p.stop_price is not None for p in book.positions.values()), "shadow positions carry their stop"
        shadow_entries += sum(1 for o in result.outcomes if o.final is Verdict.BUY)
        shadow_stops += sum(1 for o in result.outcomes if o.final is Verdict.SHADOW_EXIT and o.is_stop_exit)
    assert shadow_entries > 3 and world.app.broker.all_orders() == []
    assert shadow_stops > 0, "a shadow position's stop closes it like the broker's stop would"
    async with world.uow_factory() as uow:
        st = brk.BreakerState.from_dict(await uow.state.load(SCOPE, "breaker") or {})
        await uow.state.save(SCOPE, "breaker", replace(st, status=brk.BreakerStatus.ELIGIBLE).to_dict(),
                             at=CALENDAR.session_close(SESSIONS[79]))
        await uow.commit()
    await approve_breaker_resume(world.uow_factory, SCOPE, by="ops", as_of=CALENDAR.session_close(SESSIONS[79]),
                                 settings=None)  # type: ignore[arg-type]
    async with world.uow_factory() as uow:
        assert await load_shadow_book(uow, SCOPE) is None


async def test_a_stop_cancelled_behind_quorums_back_is_caught_and_put_back_by_the_next_cycle() -> None:
    world = await whole_share_world()
    nxt = await until_held(world)
    broker = world.app.broker
    for o in await broker.open_orders():  # someone cancels the protective legs in the broker's web UI
        if o.request.type is OrderType.STOP:
            await broker.cancel(o.broker_order_id)
    inv = checker(world)
    found = await inv.check(CALENDAR.session_close(SESSIONS[nxt - 1]))
    assert {v.rule for v in found} == {"position_protected"}, found
    feed_open(world, SESSIONS[nxt])
    result = await world.app.cycle.run(as_of=CALENDAR.session_open(SESSIONS[nxt]))
    assert await inv.check(result.as_of, result.outcomes) == []
    placed = [e for e in await events(world, EventType.ORDER_SUBMITTED) if e.payload.get("kind") == "protective_stop"]
    assert placed and all(e.cycle_id == result.cycle_id for e in placed)
