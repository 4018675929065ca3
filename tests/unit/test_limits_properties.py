"""Property tests: whatever the agents propose, an order that comes out respects every hard limit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.models.market import Asset
from domain.models.trading import Position, Side
from domain.money import PRICE_TICK
from domain.risk.config import RiskSettings
from domain.risk.fees import fill_price
from domain.risk.limits import LimitContext, LimitDecision, ProposedTrade, apply_hard_limits
from domain.risk.sizing import size_position

D = Decimal
NY = ZoneInfo("America/New_York")
TODAY = date(2025, 3, 4)
SYMBOLS = ("AAPL", "F", "BRK", "XYZ")
PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

wild_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 0.01, 0.05, 0.2, 0.25, 0.55, 0.99, 1.0, 1.5, 1e9, -1e9, float("nan"), float("inf")]),
    st.floats(min_value=0, max_value=1),
)
symbols = st.one_of(st.sampled_from(SYMBOLS), st.sampled_from(["aapl", " f ", "", "  ", "ZZZZ"]), st.text(max_size=8))
actions = st.one_of(
    st.sampled_from(["BUY", "SELL", "buy", " sell "]),
    st.sampled_from(["BUY", "HOLD", "Hold", "short", "", "BUY SELL"]),
    st.text(max_size=6),
)
mostly = st.sampled_from([True, True, True, True, False])
trades = st.builds(
    ProposedTrade,
    symbol=symbols,
    action=actions,
    confidence=wild_floats,
    position_pct=wild_floats,
    stop_loss_pct=st.none() | wild_floats,
    take_profit_pct=st.none() | wild_floats,
    reasoning=st.text(max_size=30),
    is_stop_exit=st.booleans(),
)
prices = st.decimals(min_value=D("0.50"), max_value=D("3000"), places=2)
cash_amounts = st.one_of(
    st.sampled_from([D("650"), D("0"), D("30000")]), st.decimals(min_value=D("0"), max_value=D("50000"), places=2)
)
whole_qty = st.decimals(min_value=D("-20"), max_value=D("20"), places=0)
fractional_qty = st.decimals(min_value=D("-20"), max_value=D("20"), places=9)
opened_at = st.none() | st.sampled_from(
    [
        datetime(2025, 3, 3, 20, tzinfo=UTC),
        datetime(2025, 3, 4, 1, tzinfo=UTC),
        datetime(2025, 3, 4, 14, 35, tzinfo=UTC),
    ]
)
advs = st.sampled_from([D("1e9"), D("4999999"), D("5000000")])
universes = st.lists(st.sampled_from(SYMBOLS), unique=True, min_size=1)
day_start_factors = st.sampled_from([D("0.9"), D("1"), D("1"), D("1.02"), D("1.1")])
orders_done = st.sampled_from([0, 0, 1, 2, 5])
few_day_trades, any_day_trades = st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2, 3, 4])
pending_shares = st.sampled_from([D(0), D(0), D("0.3333"), D(1)])
stop_floors, stop_caps = st.sampled_from([0.005, 0.01, 0.02]), st.sampled_from([0.08, 0.15, 0.3])
position_caps, gross_caps = st.sampled_from([0.05, 0.25, 0.5, 1.0]), st.sampled_from([0.5, 1.0, 2.0])
order_caps, min_prices = st.sampled_from([0, 3, 3, 4]), st.sampled_from([D("0"), D("5")])
confidence_floors = st.sampled_from([0.0, 0.55])


@st.composite
def risk_settings(draw: st.DrawFn) -> RiskSettings:
    lo, hi = draw(stop_floors), draw(stop_caps)
    return RiskSettings(
        max_position_pct=draw(position_caps),
        max_gross_exposure_pct=draw(gross_caps),
        max_new_orders_per_cycle=draw(order_caps),
        min_price=draw(min_prices),
        allow_short=draw(st.booleans()),
        market_hours_only=draw(st.booleans()),
        min_stop_pct=lo,
        default_stop_pct=draw(st.sampled_from([lo, 0.05, hi])),
        max_stop_pct=hi,
        min_confidence=draw(confidence_floors),
    )


@st.composite
def contexts(draw: st.DrawFn, *, friendly: bool = False) -> LimitContext:
    """Consistent account states; `friendly` ones pass the entry gates so that sizing gets exercised."""
    yes = st.just(True) if friendly else mostly
    assets: dict[str, Asset] = {}
    price_of: dict[str, Decimal] = {}
    positions: dict[str, Position] = {}
    for sym in SYMBOLS if friendly else draw(universes):
        fractionable = draw(st.booleans())
        assets[sym] = Asset(sym, fractionable=fractionable, shortable=draw(st.booleans()), tradable=draw(yes))
        price_of[sym] = draw(prices)
        qty = draw(fractional_qty if fractionable else whole_qty) if draw(st.booleans()) else D(0)
        if qty != 0:
            positions[sym] = Position(sym, qty, price_of[sym], opened_at=draw(opened_at), fractional=fractionable)
    cash = draw(cash_amounts)
    equity = cash + sum((p.qty * price_of[s] for s, p in positions.items()), D(0))
    return LimitContext(
        as_of=datetime(2025, 3, 4, 15, tzinfo=UTC),
        market_open=draw(yes),
        equity=equity,
        cash=cash,
        day_start_equity=equity * draw(day_start_factors),
        positions=positions,
        prices=price_of,
        avg_dollar_volume={s: draw(advs) for s in price_of if draw(yes)},
        assets=assets,
        orders_this_cycle=0 if friendly else draw(orders_done),
        pending_exposure=(max(equity, D(0)) * draw(pending_shares)).quantize(D("0.01")),
        day_trades_used=draw(few_day_trades if friendly else any_day_trades),
        today=TODAY,
        tz=NY,
        entries_allowed=draw(yes),
        entry_block_reason="breaker tripped",
    )


def _check_order(trade: ProposedTrade, ctx: LimitContext, s: RiskSettings, decision: LimitDecision) -> None:
    order = decision.order
    assert order is not None
    assert order.qty > 0
    assert ctx.market_open or not s.market_hours_only
    px = ctx.prices[order.symbol]
    pos = ctx.positions.get(order.symbol)
    is_exit = pos is not None and (
        (order.side is Side.SELL and pos.qty > 0) or (order.side is Side.BUY and pos.qty < 0)
    )
    if is_exit:
        assert pos is not None and order.qty == abs(pos.qty)
        assert order.stop_price is None
        return
    assert not trade.is_stop_exit
    asset = ctx.assets[order.symbol]
    assert ctx.entries_allowed
    assert ctx.orders_this_cycle < s.max_new_orders_per_cycle
    assert asset.tradable
    assert order.side is Side.BUY or (s.allow_short and asset.shortable)
    assert s.min_confidence <= trade.confidence <= 1
    assert px >= s.min_price
    assert ctx.avg_dollar_volume[order.symbol] >= s.min_avg_dollar_volume
    assert (ctx.equity - ctx.day_start_equity) / ctx.day_start_equity > -D(str(s.max_daily_loss_pct))
    assert ctx.equity >= s.pdt_equity_threshold or ctx.day_trades_used < s.pdt_max_day_trades
    if not asset.fractionable or order.side is Side.SELL:
        assert order.qty == order.qty.to_integral_value() and not order.fractional
    notional = order.qty * px
    held = abs(pos.qty * px) if pos is not None else D(0)
    gross = sum((abs(p.qty * ctx.prices[sym]) for sym, p in ctx.positions.items()), D(0))
    assert held + notional <= D(str(s.max_position_pct)) * ctx.equity + PRICE_TICK * order.qty
    assert gross + ctx.pending_exposure + notional <= D(str(s.max_gross_exposure_pct)) * ctx.equity
    assert order.qty * fill_price(Side.BUY, px, s.fees) + s.fees.commission_per_order <= ctx.cash - ctx.pending_exposure
    assert notional >= s.min_order_notional
    stop = order.stop_price
    assert stop is not None
    distance = (px - stop) / px if order.side is Side.BUY else (stop - px) / px
    assert D(str(s.min_stop_pct)) <= distance <= D(str(s.max_stop_pct))
    if order.take_profit_price is not None:
        assert (order.take_profit_price > px) == (order.side is Side.BUY)


@PROPERTY_SETTINGS
@given(trade=trades, ctx=contexts(), s=risk_settings())
def test_orders_always_respect_the_hard_limits(trade: ProposedTrade, ctx: LimitContext, s: RiskSettings) -> None:
    decision = apply_hard_limits(trade, ctx, s, client_order_id="cycle-1")
    assert decision.rejected_by != "internal_check", decision
    if decision.order is None:
        assert decision.rejected_by is not None or decision.reason == "hold"
        return
    assert decision.rejected_by is None
    _check_order(trade, ctx, s, decision)


@st.composite
def plausible_trades(draw: st.DrawFn) -> ProposedTrade:
    """Well-formed proposals, so that many examples reach sizing and produce orders."""
    return ProposedTrade(
        symbol=draw(st.sampled_from(SYMBOLS)),
        action=draw(st.sampled_from(["BUY", "BUY", "SELL"])),
        confidence=draw(st.floats(0.5, 1)),
        position_pct=draw(st.floats(0, 2)),
        stop_loss_pct=draw(st.none() | st.floats(0, 0.5)),
        take_profit_pct=draw(st.none() | st.floats(0, 1)),
        reasoning="",
    )


@PROPERTY_SETTINGS
@given(trade=plausible_trades(), ctx=contexts(friendly=True), s=risk_settings())
def test_plausible_orders_respect_the_hard_limits(trade: ProposedTrade, ctx: LimitContext, s: RiskSettings) -> None:
    decision = apply_hard_limits(trade, ctx, s, client_order_id="cycle-1")
    assert decision.rejected_by != "internal_check", decision
    if decision.order is not None:
        _check_order(trade, ctx, s, decision)


@PROPERTY_SETTINGS
@given(trade=trades, ctx=contexts(), s=risk_settings())
def test_garbage_numbers_never_open_a_position(trade: ProposedTrade, ctx: LimitContext, s: RiskSettings) -> None:
    decision = apply_hard_limits(replace(trade, confidence=float("nan")), ctx, s, client_order_id="cycle-1")
    order = decision.order
    if order is not None:
        pos = ctx.positions[order.symbol]
        assert order.qty == abs(pos.qty)


@PROPERTY_SETTINGS
@given(
    target=st.decimals(min_value=D("-10"), max_value=D("100000"), places=4),
    price=st.decimals(min_value=D("0.01"), max_value=D("5000"), places=4),
    fractionable=st.booleans(),
)
def test_sizing_never_exceeds_the_target(target: Decimal, price: Decimal, fractionable: bool) -> None:
    r = size_position(target, price, fractionable=fractionable, min_notional=D("1"))
    if r.qty is None:
        assert r.skipped_reason
        return
    assert r.qty > 0
    assert r.notional == r.qty * price <= target
    assert r.notional >= D("1")
    assert fractionable or r.qty == r.qty.to_integral_value()
    step = D("0.000000001") if fractionable else D("1")
    assert (r.qty + step) * price > target  # rounded down by less than one step
