"""Rule-based baseline strategies for the end-to-end backtest eval, on the benchmarks' terms.

Every strategy trades daily bars with the fill model of `application.benchmarks`: what a rule decides from the
bars up to a session's close trades at the next session's open, moved against it by the slippage
(`domain.risk.fees.fill_price`), and every fill pays `order_fee` with the run's `FeeSettings`. Fractional shares
(to 9 decimals), a cent kept back on each buy; the portfolio is valued at each close as cash plus shares at the
close, and what is still held at the end is not sold. When the run counts dividends, the shares held at the
previous close are credited on the ex-date, as Quorum's account and the buy-and-hold benchmarks are.

A window is a list of sessions: the session before the run (valued at the starting cash), then the run's. The
first fills are at the open of the run's first session, decided at the close before it.

- `sma_cross`: one equal slot of cash per symbol; a slot holds its symbol while the fast simple moving average of
  the closes is above the slow one.
- `momentum`: every `every` sessions, hold the `top` symbols with the highest return over the last `lookback`
  sessions; a name that drops out is sold and the names that come in share the cash.
- `random_entries`: the same number of round trips as the strategy it is compared with, each the same size and
  held as many sessions, on a symbol and at a day drawn with a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal

import numpy as np

from domain.models.market import BarSeries
from domain.models.trading import Side
from domain.money import CENT, QTY_STEP, ZERO, money, price
from domain.risk.config import FeeSettings
from domain.risk.fees import fill_price, order_fee

Dividends = Mapping[str, Mapping[date, Decimal]]


@dataclass(frozen=True, slots=True)
class Order:
    """A market order at the open of a session of the window.

    Attributes:
        symbol: the stock.
        buy: True to buy, False to sell the whole lot.
        notional: a buy spends at most this much cash (fees included); None: an equal share of the cash left
            after the session's sells, among the session's buys without a notional.
        lot: the position it opens or closes (the symbol unless two positions in one symbol may overlap).
    """

    symbol: str
    buy: bool
    notional: Decimal | None = None
    lot: str = ""

    @property
    def key(self) -> str:
        """The position this order opens or closes."""
        return self.lot or self.symbol


Plan = Mapping[int, Sequence[Order]]
"""Orders by the index in the window of the session at whose open they fill."""


@dataclass(frozen=True, slots=True)
class StrategyRun:
    """A strategy's value at each close of its window, and what it paid and received."""

    name: str
    days: tuple[date, ...]
    values: tuple[Decimal, ...]
    fees: Decimal
    dividends: Decimal
    fills: int

    @property
    def curve(self) -> list[tuple[date, Decimal]]:
        """(day, value) pairs, the starting cash first."""
        return list(zip(self.days, self.values, strict=True))


@dataclass(frozen=True, slots=True)
class TripShape:
    """What random entries copy from a round trip: how long it was held and how much it cost."""

    sessions: int
    notional: Decimal


def aligned(bars: Mapping[str, BarSeries], symbols: Sequence[str], sessions: Sequence[date]) -> dict[str, BarSeries]:
    """The series of `symbols` (history before the window kept) that have a bar on every session of the window."""
    out = {}
    for s in symbols:
        series = bars.get(s)
        if series is not None and all(series.index_of(d) is not None for d in sessions):
            out[s] = series
    return out


class _Book:
    """Cash and lots, filled on the benchmarks' terms."""

    def __init__(self, cash: Decimal, fees: FeeSettings) -> None:
        self.cash, self.fees = cash, fees
        self.lots: dict[str, tuple[str, Decimal]] = {}
        self.paid = self.received = ZERO
        self.fills = 0

    def buy(self, order: Order, open_px: float, budget: Decimal) -> None:
        if order.key in self.lots:
            return
        px = fill_price(Side.BUY, price(open_px), self.fees)
        spendable = min(budget, self.cash) - order_fee(Side.BUY, ZERO, px, self.fees) - CENT
        qty = (spendable / px).quantize(QTY_STEP, rounding=ROUND_DOWN) if spendable > 0 else ZERO
        if qty <= 0:
            return
        fee = order_fee(Side.BUY, qty, px, self.fees)
        self.cash -= money(qty * px) + fee
        self.paid += fee
        self.fills += 1
        self.lots[order.key] = (order.symbol, qty)

    def sell(self, order: Order, open_px: float) -> None:
        lot = self.lots.pop(order.key, None)
        if lot is None:
            return
        px = fill_price(Side.SELL, price(open_px), self.fees)
        fee = order_fee(Side.SELL, lot[1], px, self.fees)
        self.cash += money(lot[1] * px) - fee
        self.paid += fee
        self.fills += 1

    def credit(self, day: date, dividends: Dividends) -> None:
        for symbol, qty in self.lots.values():
            per_share = dividends.get(symbol, {}).get(day)
            if per_share:
                amount = money(qty * per_share)
                self.cash += amount
                self.received += amount

    def value(self, closes: Mapping[str, float]) -> Decimal:
        return self.cash + sum((money(qty * price(closes[s])) for s, qty in self.lots.values()), ZERO)


def _bar(series: BarSeries, day: date, field: str) -> float:
    i = series.index_of(day)
    if i is None:
        raise ValueError(f"{series.symbol} has no bar on {day}")
    return float(getattr(series, field)[i])


def _fill(book: _Book, window: Mapping[str, BarSeries], day: date, orders: Sequence[Order]) -> None:
    """Sells first, then the buys with a notional, then the others sharing what cash is left."""
    for o in orders:
        if not o.buy and o.key in book.lots:
            book.sell(o, _bar(window[o.symbol], day, "open"))
    buys = [o for o in orders if o.buy and o.symbol in window]
    for o in buys:
        if o.notional is not None:
            book.buy(o, _bar(window[o.symbol], day, "open"), o.notional)
    shared = [o for o in buys if o.notional is None and o.key not in book.lots]
    budget = (book.cash / len(shared)).quantize(CENT, rounding=ROUND_DOWN) if shared else ZERO
    for o in shared:
        book.buy(o, _bar(window[o.symbol], day, "open"), budget)


def replay(name: str, window: Mapping[str, BarSeries], sessions: Sequence[date], cash: Decimal, fees: FeeSettings,
           plan: Plan, dividends: Dividends | None = None) -> StrategyRun:
    """Fill `plan` over the window and value the book at every close.

    Args:
        name: the strategy's name.
        window: bars of every symbol the plan trades, with a bar on every session.
        sessions: the session before the run, then the run's.
        cash: starting cash.
        fees: the run's slippage and fees.
        plan: orders by the index of the session at whose open they fill (index 0 is never filled).
        dividends: cash dividend per share by ex-date, when the run counts dividends.
    """
    book = _Book(cash, fees)
    values = [cash]
    for k in range(1, len(sessions)):
        day = sessions[k]
        if dividends:
            book.credit(day, dividends)
        _fill(book, window, day, plan.get(k, ()))
        values.append(book.value({s: _bar(window[s], day, "close") for s, _ in book.lots.values()}))
    return StrategyRun(name, tuple(sessions), tuple(values), book.paid, book.received, book.fills)


def sma_in_market(series: BarSeries, day: date, fast: int, slow: int) -> bool | None:
    """Whether the fast SMA of the closes up to `day` is above the slow one; None without `slow` closes."""
    closes = series.upto(day).close
    if len(closes) < slow:
        return None
    return float(np.mean(closes[-fast:])) > float(np.mean(closes[-slow:]))


def sma_cross_plan(series: BarSeries, sessions: Sequence[date], fast: int = 20,
                   slow: int = 50) -> dict[int, list[Order]]:
    """Orders of one SMA-cross slot: buy at the open after a close with the fast SMA above the slow one while out,
    sell at the open after a close with it at or below while in."""
    if not 0 < fast < slow:
        raise ValueError(f"need 0 < fast < slow, got {fast} and {slow}")
    plan: dict[int, list[Order]] = {}
    held = False
    for t in range(len(sessions) - 1):
        want = bool(sma_in_market(series, sessions[t], fast, slow))
        if want != held:
            plan[t + 1] = [Order(series.symbol, buy=want)]
            held = want
    return plan


def sma_cross(bars: Mapping[str, BarSeries], sessions: Sequence[date], cash: Decimal, fees: FeeSettings, *,
              fast: int = 20, slow: int = 50, dividends: Dividends | None = None) -> StrategyRun:
    """SMA cross on every symbol with a bar on every session, each in its own equal slot of the cash."""
    window = aligned(bars, sorted(bars), sessions)
    if not window:
        return replay("sma_cross", {}, sessions, cash, fees, {})
    budget = (cash / len(window)).quantize(CENT, rounding=ROUND_DOWN)
    slots = [replay(s, {s: b}, sessions, budget, fees, sma_cross_plan(b, sessions, fast, slow), dividends)
             for s, b in window.items()]
    left = cash - budget * len(window)
    values = tuple(left + sum((r.values[k] for r in slots), ZERO) for k in range(len(sessions)))
    return StrategyRun("sma_cross", tuple(sessions), values, sum((r.fees for r in slots), ZERO),
                       sum((r.dividends for r in slots), ZERO), sum(r.fills for r in slots))


def momentum_ranking(bars: Mapping[str, BarSeries], day: date, lookback: int = 20, top: int = 3) -> tuple[str, ...]:
    """The `top` symbols by return over the last `lookback` sessions up to `day`'s close (ties by symbol); a
    symbol with fewer than `lookback` + 1 closes is not ranked."""
    scored = []
    for s, series in bars.items():
        closes = series.upto(day).close
        if len(closes) > lookback and closes[-lookback - 1] > 0:
            scored.append((-(float(closes[-1]) / float(closes[-lookback - 1]) - 1.0), s))
    return tuple(s for _, s in sorted(scored)[:top])


def momentum_plan(bars: Mapping[str, BarSeries], sessions: Sequence[date], *, lookback: int = 20, top: int = 3,
                  every: int = 5) -> dict[int, list[Order]]:
    """Rebalance at the open after every `every`-th close of the window (the first is the one before the run)."""
    if lookback < 1 or top < 1 or every < 1:
        raise ValueError("lookback, top and every must be at least 1")
    plan: dict[int, list[Order]] = {}
    held: tuple[str, ...] = ()
    for t in range(0, len(sessions) - 1, every):
        chosen = momentum_ranking(bars, sessions[t], lookback, top)
        orders = [Order(s, buy=False) for s in held if s not in chosen]
        orders += [Order(s, buy=True) for s in chosen if s not in held]
        if orders:
            plan[t + 1] = orders
        held = chosen
    return plan


def momentum(bars: Mapping[str, BarSeries], sessions: Sequence[date], cash: Decimal, fees: FeeSettings, *,
             lookback: int = 20, top: int = 3, every: int = 5, dividends: Dividends | None = None) -> StrategyRun:
    """The momentum rotation over every symbol with a bar on every session."""
    window = aligned(bars, sorted(bars), sessions)
    plan = momentum_plan(window, sessions, lookback=lookback, top=top, every=every)
    return replay("momentum", window, sessions, cash, fees, plan, dividends)


def random_plan(symbols: Sequence[str], sessions: Sequence[date], trips: Sequence[TripShape],
                seed: int) -> dict[int, list[Order]]:
    """One buy and one sell per trip: a symbol and an entry session drawn uniformly, held `trip.sessions`
    sessions (at most the window allows), open to open."""
    n = len(sessions)
    plan: dict[int, list[Order]] = {}
    if n < 3 or not symbols:
        return plan
    rng = np.random.default_rng(seed)
    ordered = sorted(symbols)
    for i, trip in enumerate(trips):
        hold = min(max(1, trip.sessions), n - 2)
        entry = int(rng.integers(1, n - hold))
        symbol = ordered[int(rng.integers(0, len(ordered)))]
        plan.setdefault(entry, []).append(Order(symbol, buy=True, notional=trip.notional, lot=f"{symbol}#{i}"))
        plan.setdefault(entry + hold, []).append(Order(symbol, buy=False, lot=f"{symbol}#{i}"))
    return plan


def random_entries(bars: Mapping[str, BarSeries], sessions: Sequence[date], cash: Decimal, fees: FeeSettings,
                   trips: Sequence[TripShape], *, seed: int, dividends: Dividends | None = None) -> StrategyRun:
    """Random entries with the shapes of `trips` over every symbol with a bar on every session; a buy spends at
    most the cash there is."""
    window = aligned(bars, sorted(bars), sessions)
    plan = random_plan(list(window), sessions, trips, seed)
    return replay("random_entries", window, sessions, cash, fees, plan, dividends)
