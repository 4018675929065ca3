"""`ReplayedDividends`: the `DividendVenue` side of a venue moved by a `ReplayDriver`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from adapters.inmemory.exchange import CashActivity
from adapters.inmemory.replay.driver import ReplayDriver
from application.dividends import DividendPayment, DividendVenue


class ReplayedDividends(DividendVenue):
    """The cash dividends of the replayed history (from its `Adj Close`), credited by the driver at the open of
    each ex-date; for the in-memory venue and the Alpaca-wire emulator alike. Needs `_driver`."""

    _driver: ReplayDriver

    def dividend_symbols(self) -> frozenset[str]:
        """Symbols whose data says what they paid (possibly nothing)."""
        return self._driver.timeline.market.dividends.known

    def dividends_of(self, symbol: str) -> Mapping[date, Decimal]:
        """Cash dividend per share of `symbol` by ex-date."""
        return self._driver.timeline.market.dividends.of(symbol)

    def credit_dividends(self, on: bool) -> None:
        """Credit dividends from now on (the default) or never."""
        self._driver.credit_dividends = on

    def dividend_payments(self) -> list[DividendPayment]:
        """Every dividend credited so far (DIV activities), oldest first."""
        return [DividendPayment(a.at, a.symbol, a.qty, a.per_share_amount, a.net_amount)
                for a in self._driver.exchange.activities()
                if isinstance(a, CashActivity) and a.activity_type == "DIV" and a.symbol is not None
                and a.qty is not None and a.per_share_amount is not None]
