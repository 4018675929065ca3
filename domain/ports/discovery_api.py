"""The discovery use case as its callers see it (the HTTP API, the CLI): `DiscoveryApi` and the typed values
it returns. `application.discovery.service.DiscoveryService` implements it; the callers shape the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from domain.discovery.ensemble import EnsembleResult, EnsembleScores
from domain.discovery.evaluation import ABReport, HorizonPerformance
from domain.ports.discovery import DiscoveryRun, Suggestion, WatchlistChange, WatchlistEntry

RunStatus = Literal["completed", "existing", "skipped"]


@dataclass(frozen=True)
class DiscoveryOutcome:
    """What a run produced (or, for a run that already existed, what it stored).

    Attributes:
        run: the run.
        suggestions: the stored suggestion rows.
        changes: watchlist changes of the run.
        watchlist: the watchlist after the run.
        ensemble: the ensemble's scores of the whole universe (None for a stored or skipped run).
        divergent: the divergent suggested symbols reported (DISCOVERY_DIVERGENCE), widest spread first.
        llm_error: why the LLM picker gave nothing, if it did not.
        skipped: why nothing was scored, if nothing was.
        existing: the run had already been stored (a retry).
    """

    run: DiscoveryRun
    suggestions: list[Suggestion]
    changes: list[WatchlistChange] = field(default_factory=list)
    watchlist: list[WatchlistEntry] = field(default_factory=list)
    ensemble: EnsembleScores | None = None
    divergent: list[EnsembleResult] = field(default_factory=list)
    llm_error: str | None = None
    skipped: str | None = None
    existing: bool = False

    @property
    def status(self) -> RunStatus:
        """"skipped" (nothing scored), "existing" (a retry of a stored run) or "completed"."""
        return "skipped" if self.skipped else ("existing" if self.existing else "completed")

    @property
    def skipped_filters(self) -> dict[str, str]:
        """Filters the run could not apply (their data missing for the whole universe) -> the reason."""
        return dict(self.run.stats.get("skipped_filters") or {})

    @property
    def ranked(self) -> list[EnsembleResult]:
        """Every scored symbol's ensemble result, best first, built on access (empty for a stored or skipped run).

        Use `ensemble.top(n)` or `ensemble.result(symbol)` to build only what is needed.
        """
        return [] if self.ensemble is None else self.ensemble.ranked()


@dataclass(frozen=True)
class DiscoveryDisabled:
    """Discovery is switched off: no run was made."""

    reason: str


DiscoveryRunResult = DiscoveryOutcome | DiscoveryDisabled


@dataclass(frozen=True)
class DiscoveryStatus:
    """Where discovery stands.

    Attributes:
        enabled: whether runs are made at all.
        pickers: the enabled pickers.
        running: a run is in progress.
        last_run: the latest run, if any.
        next_run: the next scheduled run (None: no session ahead in the calendar).
        watchlist_size: symbols on the watchlist.
        max_watchlist_size: the most the watchlist holds.
        manual: symbols on it added by hand.
    """

    enabled: bool
    pickers: tuple[str, ...]
    running: bool
    last_run: DiscoveryRun | None
    next_run: datetime | None
    watchlist_size: int
    max_watchlist_size: int
    manual: int


@dataclass(frozen=True)
class DiscoveryPerformance:
    """How the suggestions made before `as_of` did.

    Attributes:
        as_of: the end of the measured period.
        pickers: picker -> horizon (trading days) -> performance against the equal-weighted universe.
        paper_trades: the trades taken against hypothetical trades from the ensemble's suggestions.
    """

    as_of: datetime
    pickers: Mapping[str, Mapping[int, HorizonPerformance]]
    paper_trades: ABReport


@dataclass(frozen=True)
class WatchlistEdit:
    """A change made by hand and the watchlist after it."""

    changes: tuple[WatchlistChange, ...]
    watchlist: tuple[WatchlistEntry, ...]


@runtime_checkable
class DiscoveryApi(Protocol):
    """What the discovery endpoints call.

    A ValueError (e.g. removing a symbol that is not on the watchlist) becomes a 400 with its message.
    """

    async def status(self) -> DiscoveryStatus:
        """Last run, next run, watchlist size and whether a run is in progress."""
        ...

    async def run(self) -> DiscoveryRunResult:
        """Run discovery now (or say it is disabled)."""
        ...

    async def suggestions(self) -> list[Suggestion]:
        """The ensemble's suggestions of the latest run, best first."""
        ...

    async def performance(self) -> DiscoveryPerformance:
        """How past suggestions and pickers performed."""
        ...

    async def watchlist_add(self, symbol: str) -> WatchlistEdit:
        """Add an upper-cased, validated symbol to the watchlist by hand."""
        ...

    async def watchlist_remove(self, symbol: str) -> WatchlistEdit:
        """Remove a symbol from the watchlist by hand."""
        ...
