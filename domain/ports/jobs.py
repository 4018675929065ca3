"""Ports of the background jobs: what the scheduler and the workers run, and what they read back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from domain.ports.alerts import AlertStatus


class CycleReport(Protocol):
    """What a job needs to know of a finished cycle."""

    @property
    def cycle_id(self) -> str:
        """The cycle's id."""
        ...

    @property
    def status(self) -> str:
        """completed, skipped or failed."""
        ...

    @property
    def error(self) -> str | None:
        """Why it failed, when it did."""
        ...


@runtime_checkable
class CycleRunner(Protocol):
    """Runs one trading cycle (`application.trading_service.TradingService` is one)."""

    async def run_cycle(self, *, kind: str = "scheduled", symbol: str | None = None,
                        as_of: datetime | None = None, cycle_id: str | None = None) -> CycleReport:
        """Run the cycle `cycle_id` as of `as_of` (now when None)."""
        ...


@runtime_checkable
class Reconciler(Protocol):
    """Reconciles the database with the broker in a transaction of its own."""

    async def reconcile_now(self) -> int:
        """Reconcile now; returns the number of differences written to the event log."""
        ...


class Discovery(Protocol):
    """The discovery use case, as far as the scheduler needs it."""

    async def run(self, as_of: datetime) -> object:
        """Score the market and update the watchlist as of `as_of`."""
        ...

    async def update_forward_returns(self, as_of: datetime) -> object:
        """Fill in the forward returns of past picks known at `as_of`."""
        ...


class Delivery(Protocol):
    """What became of one alert on one channel."""

    @property
    def status(self) -> AlertStatus:
        """Delivered or undeliverable (for a duplicate: the stored status)."""
        ...

    @property
    def duplicate(self) -> bool:
        """Whether the alert had already been stored for this channel."""
        ...


class AlertForwarder(Protocol):
    """Forwards the event log's alerts to the channels (`application.alerts.AlertService` is one)."""

    async def dispatch_new_events(self) -> Sequence[Delivery]:
        """Store and deliver the alerts of the alert-worthy events logged since the last call."""
        ...

    async def retry_undelivered(self) -> Sequence[Delivery]:
        """Try once more each stored alert that is still pending or undeliverable."""
        ...
