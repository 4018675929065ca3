"""`InMemoryVenue`: the in-memory broker on replayed history, moved by the same driver as the emulator."""

from __future__ import annotations

from datetime import datetime, timedelta

from adapters.inmemory.broker import InMemoryBroker
from adapters.inmemory.clock import SimClock
from adapters.inmemory.market_data import DailyBarMarketData
from adapters.inmemory.replay import ReplayDriver, ReplayedDividends, Timeline
from domain.models.trading import Fill
from domain.ports.clock import Clock, MarketCalendar
from domain.ports.venue import SimulatedVenue

WARM_UP = timedelta(minutes=1)


class InMemoryVenue(SimulatedVenue, ReplayedDividends):
    """Implements `SimulatedVenue` with an `InMemoryBroker` fed from a `DailyBarMarketData`, and `DividendVenue`:
    the history's cash dividends are credited at the open of each ex-date.

    Args:
        broker: the simulated broker; it must read `clock`.
        market: the history to replay (daily bars, and the intraday bars it holds).
        calendar: the exchange calendar.
        clock: the venue's clock; events after its time are replayed by `advance_to`.
    """

    def __init__(self, broker: InMemoryBroker, market: DailyBarMarketData, calendar: MarketCalendar,
                 clock: SimClock) -> None:
        self.broker, self.market = broker, market
        self._clock = clock
        self._driver = ReplayDriver(broker.exchange, Timeline(market, calendar), calendar, clock.set, clock.now())

    @property
    def clock(self) -> Clock:
        """The venue's time."""
        return self._clock

    def advance_to(self, at: datetime) -> list[Fill]:
        """Replay every price event up to `at` (see `ReplayDriver.advance_to`).

        Raises:
            ValueError: `at` is naive or earlier than the venue's time.
        """
        if at < self._clock.now():
            raise ValueError(f"the venue cannot go back from {self._clock.now().isoformat()} to {at.isoformat()}")
        return self._driver.advance_to(at)
