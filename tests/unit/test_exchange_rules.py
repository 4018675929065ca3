"""The exchange model's pure rules: Alpaca's wash-trade table, where orders execute, buying-power valuation, and
the checks that refuse an order for what it is (422)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from adapters.inmemory.exchange import ExchangeOrder, ExchangeRules, Kind, OrderClass, OrderSpec, Rejection, Role, Tif
from adapters.inmemory.exchange import Status as St
from adapters.inmemory.exchange.pricing import at_print, buy_valuation, in_range
from adapters.inmemory.exchange.protections import could_wash
from adapters.inmemory.exchange.rules import fmt, qty_error, tick_error
from adapters.inmemory.exchange.validation import check_spec
from domain.models.trading import Side
from domain.risk.config import FeeSettings

D = Decimal
FEES = FeeSettings()
NO_SLIP = FeeSettings(slippage_bps=D(0))
RULES = ExchangeRules()


def order(side: Side, kind: Kind, *, limit: str | None = None, stop: str | None = None,
          triggered: bool = False) -> ExchangeOrder:
    return ExchangeOrder(
        id="o1", client_order_id="c1", seq=1, symbol="AAA", side=side, kind=kind, tif=Tif.GTC,
        order_class=OrderClass.SIMPLE, role=Role.ENTRY, qty=D(1), notional=None,
        limit_price=D(limit) if limit else None, stop_price=D(stop) if stop else None, status=St.NEW,
        submitted_at=datetime(2024, 7, 1, tzinfo=UTC), session_day=date(2024, 7, 1), fractional=False,
        active_since=datetime(2024, 7, 1, tzinfo=UTC), triggered=triggered,
    )


def spec(side: Side, kind: Kind, limit: str | None = None, **kw: object) -> OrderSpec:
    return OrderSpec("AAA", side, qty=D(1), kind=kind, limit_price=D(limit) if limit else None,
                     stop_price=D("90") if kind in (Kind.STOP, Kind.STOP_LIMIT) else None, **kw)  # type: ignore[arg-type]


# Alpaca's table (docs.alpaca.markets/docs/user-protection): existing order, new order, rejected?
# Limit-type pairs are given a buy limit of 100 and a sell limit of 100 (rejected: buy >= sell).
M, LI, S, SL = Kind.MARKET, Kind.LIMIT, Kind.STOP, Kind.STOP_LIMIT
TABLE = [(e, n, True) for e in (M, S) for n in (M, LI, S, SL)] + [(e, n, True) for e in (LI, SL) for n in (M, S)] + [
    (e, n, "limits") for e in (LI, SL) for n in (LI, SL)]


@pytest.mark.parametrize(("existing_kind", "new_kind", "expected"), TABLE)
@pytest.mark.parametrize("existing_side", [Side.BUY, Side.SELL])
def test_the_wash_trade_table(existing_side: Side, existing_kind: Kind, new_kind: Kind, expected: object) -> None:
    new_side = Side.SELL if existing_side is Side.BUY else Side.BUY
    limit = "100" if existing_kind in (LI, SL) else None
    existing = order(existing_side, existing_kind, limit=limit, stop="90" if existing_kind in (S, SL) else None)
    if expected is True:
        assert could_wash(existing, spec(new_side, new_kind, "100" if new_kind in (LI, SL) else None))
        return
    buy_high = "101" if new_side is Side.BUY else "99"
    buy_low = "99" if new_side is Side.BUY else "101"
    assert could_wash(existing, spec(new_side, new_kind, "100"))  # buy limit == sell limit
    assert could_wash(existing, spec(new_side, new_kind, buy_high))  # buy limit above the sell limit
    assert not could_wash(existing, spec(new_side, new_kind, buy_low))  # they cannot meet


def test_same_side_orders_never_wash() -> None:
    assert not could_wash(order(Side.SELL, Kind.STOP, stop="90"), spec(Side.SELL, Kind.MARKET))


def test_prints_fill_market_orders_and_crossed_resting_orders() -> None:
    assert at_print(order(Side.BUY, M), D("100"), FEES) == (D("100.0500"), False)
    assert at_print(order(Side.BUY, LI, limit="99"), D("100"), FEES) == (None, False)
    assert at_print(order(Side.BUY, LI, limit="100.02"), D("100"), FEES) == (D("100.02"), False)  # never above
    assert at_print(order(Side.SELL, S, stop="95"), D("96"), FEES) == (None, False)
    assert at_print(order(Side.SELL, S, stop="95"), D("94"), FEES) == (D("93.9530"), True)
    px, triggered = at_print(order(Side.SELL, SL, limit="94.50", stop="95"), D("94"), FEES)
    assert (px, triggered) == (None, True)  # elected, but below its limit: rests as a limit order
    assert at_print(order(Side.SELL, SL, limit="94.50", stop="95", triggered=True), D("94.60"), NO_SLIP)[0] == D(
        "94.60")


def test_ranges_trigger_stops_at_the_stop_or_the_gap() -> None:
    stop = order(Side.SELL, S, stop="95")
    assert in_range(stop, D("97"), D("98"), D("96"), FEES) == (None, False)
    assert in_range(stop, D("97"), D("98"), D("93"), FEES) == (D("94.9525"), True)
    assert in_range(stop, D("90"), D("92"), D("88"), FEES) == (D("89.9550"), True)  # gapped below: the open
    assert in_range(order(Side.BUY, S, stop="105"), D("100"), D("106"), D("99"), NO_SLIP)[0] == D("105")
    assert in_range(order(Side.SELL, LI, limit="110"), D("100"), D("111"), D("99"), FEES)[0] == D("110")
    assert in_range(order(Side.SELL, LI, limit="110"), D("112"), D("113"), D("111"), NO_SLIP)[0] == D("112")
    assert in_range(order(Side.BUY, M), D("100"), D("101"), D("99"), FEES) == (None, False)


def test_a_stop_limit_fills_at_its_limit_or_better_once_elected() -> None:
    sl = order(Side.SELL, SL, limit="94", stop="95")
    assert in_range(sl, D("97"), D("98"), D("94.50"), NO_SLIP) == (D("95"), True)
    assert in_range(sl, D("90"), D("95"), D("89"), NO_SLIP) == (D("94"), True)  # gapped below the limit, came back
    assert in_range(sl, D("90"), D("93"), D("89"), NO_SLIP) == (None, True)  # never back up to its limit


def test_buys_are_valued_at_their_limit_or_the_last_price_plus_the_collar() -> None:
    assert buy_valuation(Kind.MARKET, None, None, D("100"), D("0.05")) == D("105.00")
    assert buy_valuation(Kind.MARKET, None, None, D("33.71"), D("0.05")) == D("35.40")  # 35.3955 rounded up
    assert buy_valuation(Kind.LIMIT, D("98"), None, D("100"), D("0.05")) == D("98")
    assert buy_valuation(Kind.STOP, None, D("110"), D("100"), D("0.02")) == D("112.20")


def test_ticks_and_quantities() -> None:
    assert tick_error("limit_price", D("10.01")) is None and tick_error("limit_price", D("0.5123")) is None
    assert "sub-penny" in (tick_error("limit_price", D("10.001")) or "")
    assert "sub-penny" in (tick_error("stop_price", D("0.51234")) or "")
    assert qty_error(D("0.000000001")) is None
    assert "9 decimal" in (qty_error(D("0.0000000001")) or "")
    assert fmt(D("100.0500")) == "100.05" and fmt(D("1E+2")) == "100"


def refused(s: OrderSpec, *, fractionable: bool = True, last: str = "100") -> Rejection:
    with pytest.raises(Rejection) as caught:
        check_spec(s, fractionable=fractionable, last=D(last), rules=RULES)
    return caught.value


def test_fractional_orders_must_be_simple_day_orders_of_fractionable_assets() -> None:
    gtc = OrderSpec("AAA", Side.BUY, qty=D("1.5"), tif=Tif.GTC)
    assert (refused(gtc).status, refused(gtc).body) == (422, {"code": 42210000,
                                                              "message": "fractional orders must be DAY orders"})
    oto = OrderSpec("AAA", Side.BUY, qty=D("1.5"), order_class=OrderClass.OTO, stop_loss_stop=D("90"))
    assert refused(oto).message == "fractional orders must be simple orders"
    assert refused(OrderSpec("AAA", Side.BUY, notional=D(50)), fractionable=False).message == (
        "requested asset is not fractionable")
    assert "at least 1" in refused(OrderSpec("AAA", Side.BUY, notional=D("0.50"))).message
    assert check_spec(OrderSpec("AAA", Side.BUY, qty=D("1.5"), kind=Kind.LIMIT, limit_price=D(99)),
                      fractionable=True, last=D(100), rules=RULES)


def test_bracket_prices_are_checked_against_the_base_price() -> None:
    bracket = OrderSpec("AAA", Side.BUY, qty=D(1), order_class=OrderClass.BRACKET, take_profit_limit=D(110),
                        stop_loss_stop=D("99.995"))
    assert "sub-penny" in refused(bracket).message
    high_stop = OrderSpec("AAA", Side.BUY, qty=D(1), order_class=OrderClass.OTO, stop_loss_stop=D("100.00"))
    r = refused(high_stop)
    assert (r.message, r.body["base_price"]) == ("stop_loss.stop_price must be <= base_price - 0.01", "100")
    low_take = OrderSpec("AAA", Side.BUY, qty=D(1), order_class=OrderClass.BRACKET, take_profit_limit=D("100"),
                         stop_loss_stop=D(95))
    assert refused(low_take).message == "take_profit.limit_price must be >= base_price + 0.01"
    limit_entry = OrderSpec("AAA", Side.BUY, qty=D(1), kind=Kind.LIMIT, limit_price=D(90),
                            order_class=OrderClass.OTO, stop_loss_stop=D("95"))
    assert refused(limit_entry).body["base_price"] == "90"  # a limit entry's base is its limit
    assert "exactly one" in refused(OrderSpec("AAA", Side.BUY, qty=D(1), order_class=OrderClass.OTO)).message
    assert "both" in refused(OrderSpec("AAA", Side.BUY, qty=D(1), order_class=OrderClass.BRACKET,
                                       stop_loss_stop=D(90))).message


def test_size_and_price_fields() -> None:
    assert refused(OrderSpec("AAA", Side.BUY)).body == {"code": 40010001, "message": "qty or notional is required"}
    assert refused(OrderSpec("AAA", Side.BUY, qty=D(1), notional=D(10))).message == (
        "only one of qty or notional is accepted")
    assert refused(OrderSpec("AAA", Side.BUY, qty=D(0))).message == "qty must be > 0"
    assert "limit_price is required" in refused(OrderSpec("AAA", Side.BUY, qty=D(1), kind=Kind.LIMIT)).message
    assert "stop_price is required" in refused(OrderSpec("AAA", Side.SELL, qty=D(1), kind=Kind.STOP)).message
