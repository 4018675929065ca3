"""The shadow book keeps the take-profit a real entry would have sent as a bracket leg: a shadow position whose
take-profit is reached is closed as a win, like the broker's leg closes the real one. Without it, winners stayed
open for months, the shadow win streak never grew and a tripped breaker never became eligible to resume."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import numpy as np

from application.cycle.exits import shadow_stop_exits
from application.cycle.market_snapshot import Snapshot
from domain.models.market import BarSeries
from domain.models.trading import Portfolio, Side
from domain.risk.config import FeeSettings
from domain.shadow import closed_return, portfolio_from_dict, portfolio_to_dict, simulate_fill
from domain.verdict import Verdict

ENTRY_AT = datetime(2017, 10, 2, 13, 30, tzinfo=UTC)


class Snap:
    """The part of a cycle snapshot the shadow exits read: latest prices and daily bars."""

    def __init__(self, price: str, high: float, low: float) -> None:
        self.prices = {"BAC": Decimal(price)}
        days = (date(2017, 11, 29),)
        self.bars = {"BAC": BarSeries("BAC", days, np.array([high]), np.array([high]), np.array([low]),
                                      np.array([high]), np.array([1e6]))}


def shadow_entry() -> Portfolio:
    book, _ = simulate_fill(Portfolio(Decimal("650")), symbol="BAC", side=Side.BUY, qty=Decimal("6"),
                            reference=Decimal("25.46"), fees=FeeSettings(), at=ENTRY_AT, client_order_id="c1",
                            reason="shadow: entry", stop_price=Decimal("24.42"),
                            take_profit_price=Decimal("28.59"))
    return portfolio_from_dict(portfolio_to_dict(book))  # stored between cycles


def exits(book: Portfolio, snap: Snap) -> list[Any]:
    return shadow_stop_exits(cast(Snapshot, snap), book)


def test_a_shadow_position_is_closed_when_its_take_profit_is_reached() -> None:
    book = shadow_entry()
    assert exits(book, Snap("27.90", high=28.40, low=27.50)) == []
    for snap in (Snap("28.70", high=28.40, low=27.50), Snap("28.10", high=28.72, low=27.90)):
        (out,) = exits(book, snap)
        assert out.symbol == "BAC" and out.final is Verdict.SHADOW_EXIT and not out.is_stop_exit
        assert "take profit" in out.signal.reasoning


def test_a_shadow_take_profit_closes_a_winning_trade() -> None:
    book = shadow_entry()
    held = book.positions["BAC"]
    book, fill = simulate_fill(book, symbol="BAC", side=Side.SELL, qty=held.qty, reference=Decimal("28.70"),
                               fees=FeeSettings(), at=datetime(2017, 11, 30, 14, 30, tzinfo=UTC),
                               client_order_id="c2", reason="shadow exit")
    assert "BAC" not in book.positions and closed_return(held.avg_entry_price, fill) > 0.1


def test_a_session_through_both_the_stop_and_the_take_profit_counts_as_the_stop() -> None:
    (out,) = exits(shadow_entry(), Snap("26.00", high=29.00, low=24.00))
    assert out.is_stop_exit and "stop" in out.signal.reasoning
