"""The account's money and shares: cash, holdings, fills, deposits, dividends, account activities and day trades.

Cash only moves through fills (`Fill.cash_delta`, fees included), deposits and cash dividends, so replaying the
fills, deposits and DIV activities from the starting cash gives the cash to the cent. Fills are appended in time
order, so reading the fills since a time is a bisection, not a scan over the whole history.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from adapters.inmemory.exchange.rules import ny_date
from domain.models.trading import Fill, Side
from domain.money import ZERO, money


@dataclass(frozen=True, slots=True)
class CashMovement:
    """A deposit (positive) or withdrawal (negative): money in or out that is not profit."""

    amount: Decimal
    at: datetime


@dataclass(slots=True)
class Holding:
    """Shares held of one symbol (negative for a short) and their average entry price."""

    qty: Decimal
    avg_entry_price: Decimal


@dataclass(frozen=True, slots=True)
class FillActivity:
    """A FILL account activity: one execution of one order."""

    id: str
    fill: Fill
    order_id: str
    cum_qty: Decimal
    leaves_qty: Decimal


@dataclass(frozen=True, slots=True)
class CashActivity:
    """A non-trade account activity: a deposit (CSD), a withdrawal (CSW), a regulatory fee (FEE) or a cash
    dividend (DIV, with the shares it was paid on and the amount per share)."""

    id: str
    activity_type: str
    at: datetime
    net_amount: Decimal
    description: str
    symbol: str | None = None
    qty: Decimal | None = None
    per_share_amount: Decimal | None = None


Activity = FillActivity | CashActivity


def activity_id(at: datetime, suffix: str) -> str:
    """Alpaca's activity id: the UTC time to the millisecond, "::", a UUID."""
    stamp = at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond // 1000:03d}"
    return f"{stamp}::{suffix}"


def activity_time(activity: Activity) -> datetime:
    """When an activity happened."""
    return activity.fill.at if isinstance(activity, FillActivity) else activity.at


class Ledger:
    """Cash, holdings and history of one account.

    Args:
        starting_cash: cash at the start (whole cents).
    """

    def __init__(self, starting_cash: Decimal) -> None:
        self.cash = starting_cash
        self.net_deposits = ZERO
        self.dividends = ZERO
        self.holdings: dict[str, Holding] = {}
        self.fills: list[Fill] = []
        self._fill_times: list[datetime] = []
        self.movements: list[CashMovement] = []
        self.activities: list[Activity] = []
        self._activity_index: dict[str, int] = {}
        self._trade_day: date | None = None
        self._opened_today: dict[str, Decimal] = defaultdict(Decimal)
        self._day_trades: dict[date, int] = defaultdict(int)

    def qty(self, symbol: str) -> Decimal:
        """Shares held of `symbol` (0 when flat)."""
        h = self.holdings.get(symbol)
        return h.qty if h else ZERO

    def bought_today(self, symbol: str, day: date) -> Decimal:
        """Shares of `symbol` opened on New York day `day` and not yet closed that day."""
        return self._opened_today.get(symbol, ZERO) if self._trade_day == day else ZERO

    def day_trades_on(self, days: set[date]) -> int:
        """Day trades made on `days`."""
        return sum(self._day_trades.get(d, 0) for d in days)

    def fill_problem(self, fill: Fill, *, allow_short: bool) -> str | None:
        """Why `fill` cannot be booked (not enough cash, or shares for a sell without shorting), or None."""
        if fill.side is Side.BUY and -fill.cash_delta > self.cash:
            return f"insufficient cash at fill: needs {-fill.cash_delta}, has {self.cash}"
        if fill.side is Side.SELL and not allow_short and fill.qty > self.qty(fill.symbol):
            return f"insufficient qty at fill: selling {fill.qty}, holding {self.qty(fill.symbol)}"
        return None

    def book_fill(self, fill: Fill, order_id: str, cum_qty: Decimal, leaves_qty: Decimal, uid: str) -> None:
        """Apply `fill` to cash and holdings and record it (and its fee) as account activities."""
        if self._fill_times and fill.at < self._fill_times[-1]:
            raise ValueError(f"fill at {fill.at.isoformat()} is earlier than the last one booked")
        self._count_day_trade(fill)
        self._apply(fill)
        self.cash += fill.cash_delta
        self.fills.append(fill)
        self._fill_times.append(fill.at)
        self._add_activity(FillActivity(activity_id(fill.at, uid), fill, order_id, cum_qty, leaves_qty))
        if fill.fee > 0:
            self._add_activity(CashActivity(activity_id(fill.at, uid[::-1]), "FEE", fill.at, -fill.fee,
                                            "regulatory and commission fees", fill.symbol))

    def deposit(self, amount: Decimal, at: datetime, uid: str, *, journal: bool = False) -> None:
        """Add (positive) or withdraw (negative) cash that is not profit: a CSD or CSW activity, or a JNLC (a cash
        journal from or to another account) when `journal`."""
        self.cash += amount
        self.net_deposits += amount
        self.movements.append(CashMovement(amount, at))
        if journal:
            kind, text = "JNLC", "cash journal"
        else:
            kind, text = ("CSD", "cash deposit") if amount > 0 else ("CSW", "cash withdrawal")
        self._add_activity(CashActivity(activity_id(at, uid), kind, at, amount, text))

    def credit_dividend(self, symbol: str, per_share: Decimal, at: datetime, uid: str) -> CashActivity:
        """Credit the cash dividend of the shares of `symbol` held now (a short position pays it) as a DIV activity."""
        qty = self.qty(symbol)
        amount = money(qty * per_share)
        self.cash += amount
        self.dividends += amount
        activity = CashActivity(activity_id(at, uid), "DIV", at, amount, "cash dividend", symbol, qty, per_share)
        self._add_activity(activity)
        return activity

    def fills_since(self, since: datetime) -> list[Fill]:
        """Fills at or after `since`, oldest first."""
        return self.fills[bisect.bisect_left(self._fill_times, since):]

    def activity_position(self, activity_id_: str) -> int | None:
        """Index of an activity in `activities`, or None."""
        return self._activity_index.get(activity_id_)

    def market_value(self, prices: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
        """(long, short) market value of the holdings at `prices`, each rounded to the cent."""
        long_value = short_value = ZERO
        for symbol, h in self.holdings.items():
            value = money(h.qty * prices[symbol])
            if value >= 0:
                long_value += value
            else:
                short_value += value
        return long_value, short_value

    def _add_activity(self, activity: Activity) -> None:
        self._activity_index[activity.id] = len(self.activities)
        self.activities.append(activity)

    def _apply(self, fill: Fill) -> None:
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        old = self.holdings.get(fill.symbol)
        new_qty = (old.qty if old else ZERO) + signed
        if new_qty == 0:
            self.holdings.pop(fill.symbol, None)
        elif old is None or (old.qty > 0) != (new_qty > 0):
            self.holdings[fill.symbol] = Holding(new_qty, fill.price)
        elif abs(new_qty) > abs(old.qty):
            old.avg_entry_price = (old.avg_entry_price * abs(old.qty) + fill.price * fill.qty) / abs(new_qty)
            old.qty = new_qty
        else:
            old.qty = new_qty

    def _count_day_trade(self, fill: Fill) -> None:
        """A reducing fill that follows same-day opening fills in the symbol counts one day trade (FINRA:
        buy-sell-buy-sell is two, buy-buy-sell is one)."""
        day = ny_date(fill.at)
        if day != self._trade_day:
            self._trade_day = day
            self._opened_today.clear()
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        before = self.qty(fill.symbol)
        if before == 0 or (before > 0) == (signed > 0):
            self._opened_today[fill.symbol] += abs(signed)
        elif self._opened_today.get(fill.symbol, ZERO) > 0:
            self._day_trades[day] += 1
            self._opened_today[fill.symbol] = max(self._opened_today[fill.symbol] - abs(signed), ZERO)
