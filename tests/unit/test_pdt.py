"""Pattern-day-trader counting over the last 5 sessions, in exchange time."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from domain.models.trading import Fill, Position, Side
from domain.risk.config import RiskSettings
from domain.risk.pdt import count_day_trades, opened_today, pdt_restricted

NY = ZoneInfo("America/New_York")
# Mon 3 March .. Fri 7 March 2025
SESSIONS = [date(2025, 3, d) for d in (3, 4, 5, 6, 7)]


def fill(symbol: str, side: Side, at: datetime, cid: str, qty: str = "1") -> Fill:
    return Fill(cid, symbol, side, Decimal(qty), Decimal("100"), Decimal("0"), at)


def et(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=NY)


def test_round_trip_on_one_day_is_one_day_trade() -> None:
    fills = [fill("AAPL", Side.BUY, et(3, 10), "b1"), fill("AAPL", Side.SELL, et(3, 15), "s1")]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 1


def test_overnight_hold_is_not_a_day_trade() -> None:
    fills = [fill("MSFT", Side.BUY, et(4, 10), "b1"), fill("MSFT", Side.SELL, et(5, 10), "s1")]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 0


def test_day_is_taken_in_exchange_time_not_utc() -> None:
    # 14:00 ET Tuesday buy; the sell at 01:30 UTC Wednesday is 20:30 ET Tuesday: same trading day
    buy = fill("TSLA", Side.BUY, et(4, 14), "b1")
    sell = fill("TSLA", Side.SELL, datetime(2025, 3, 5, 1, 30, tzinfo=UTC), "s1")
    assert count_day_trades([buy, sell], sessions=SESSIONS, tz=NY) == 1
    # 09:35 ET Wednesday is 14:35 UTC Wednesday, but a buy at 03:00 UTC Wednesday was Tuesday in New York
    early = fill("AMD", Side.BUY, datetime(2025, 3, 5, 3, 0, tzinfo=UTC), "b2")
    later = fill("AMD", Side.SELL, et(5, 9, 35), "s2")
    assert count_day_trades([early, later], sessions=SESSIONS, tz=NY) == 0


def test_counts_min_of_buy_and_sell_orders_per_symbol_day() -> None:
    fills = [
        fill("NVDA", Side.BUY, et(6, 10), "b1"),
        fill("NVDA", Side.BUY, et(6, 11), "b2"),
        fill("NVDA", Side.SELL, et(6, 15), "s1"),
        fill("META", Side.BUY, et(6, 10), "b3"),
        fill("META", Side.SELL, et(6, 11), "s2"),
        fill("META", Side.BUY, et(6, 12), "b4"),
        fill("META", Side.SELL, et(6, 13), "s3"),
    ]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 1 + 2


def test_partial_fills_of_one_order_are_one_order() -> None:
    fills = [
        fill("AAPL", Side.BUY, et(7, 10), "b1", "0.5"),
        fill("AAPL", Side.BUY, et(7, 10, 1), "b1", "0.5"),
        fill("AAPL", Side.SELL, et(7, 14), "s1", "0.3"),
        fill("AAPL", Side.SELL, et(7, 14, 1), "s1", "0.7"),
    ]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 1


def test_sell_then_rebuy_the_same_day_counts() -> None:
    fills = [fill("F", Side.SELL, et(5, 10), "s1"), fill("F", Side.BUY, et(5, 11), "b1")]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 1


def test_only_the_given_sessions_count_across_the_window() -> None:
    fills = [
        fill("AAPL", Side.BUY, et(28, 10, month=2), "old-b"),  # Fri 28 Feb: outside the window
        fill("AAPL", Side.SELL, et(28, 11, month=2), "old-s"),
    ]
    for n, day in enumerate(SESSIONS):
        fills += [fill("SPY", Side.BUY, et(day.day, 10), f"b{n}"), fill("SPY", Side.SELL, et(day.day, 11), f"s{n}")]
    assert count_day_trades(fills, sessions=SESSIONS, tz=NY) == 5
    assert count_day_trades(fills, sessions=SESSIONS[2:], tz=NY) == 3


def test_naive_fill_time_is_refused() -> None:
    naive = datetime(2025, 3, 3, 10)  # noqa: DTZ001 - naive on purpose: it has no trading day, so it is refused
    with pytest.raises(ValueError, match="timezone"):
        count_day_trades([fill("AAPL", Side.BUY, naive, "b")], sessions=SESSIONS, tz=NY)


def test_opened_today_in_exchange_time() -> None:
    today = date(2025, 3, 4)
    pos = Position("AAPL", Decimal("1"), Decimal("100"), opened_at=datetime(2025, 3, 4, 14, 35, tzinfo=UTC))
    assert opened_today(pos, today=today, tz=NY)
    # 01:00 UTC on the 4th is 20:00 ET on the 3rd
    evening = Position("AAPL", Decimal("1"), Decimal("100"), opened_at=datetime(2025, 3, 4, 1, 0, tzinfo=UTC))
    assert not opened_today(evening, today=today, tz=NY)


def test_unknown_opening_time_counts_as_today() -> None:
    assert opened_today(Position("AAPL", Decimal("1"), Decimal("100")), today=date(2025, 3, 4), tz=NY)


def test_pdt_restriction_applies_below_the_threshold_once_the_trades_are_used() -> None:
    s = RiskSettings()
    assert pdt_restricted(Decimal("650"), 3, s)
    assert not pdt_restricted(Decimal("650"), 2, s)
    assert not pdt_restricted(Decimal("25000"), 5, s)
    assert pdt_restricted(Decimal("NaN"), 3, s)
