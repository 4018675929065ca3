"""WatchlistManager: the watchlist the trading cycle trades from, merging manual and discovered symbols.

Rules (`plan_discovery_update` is the pure part):
- manual symbols stay until a person removes them; discovery never evicts them, and they count
  towards `max_watchlist_size` (when they alone exceed it they are all kept and nothing is discovered);
- a discovery run adds at most `top_n` new symbols, each scoring at least `min_score` in the ensemble;
- a discovered symbol stays while the ensemble still scores it at least `min_score` less `keep_margin`
  (0.05, so a symbol hovering at the threshold does not flap in and out every run); it is removed when
  its score drops below that, when the metric picker's hard filter rejects it, or when it is no longer
  in the universe; when the list is full, the lowest-scoring discovered symbols make room for better ones;
- a symbol a person removed is not re-added by discovery for `manual_removal_block` (7 days);
- every addition and removal is recorded in the change log with its reason and written to the event log as
  a WATCHLIST_CHANGED event of its own (DEBUG, with the symbol); each discovery run or manual edit that changed
  anything also writes one INFO WATCHLIST_CHANGED summary (payload: added, removed, reasons, size), the one that
  is alerted, so a run that swaps ten symbols sends one alert, not ten.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from application.cycle.trading_cycle import Universe
from domain.discovery.config import DiscoverySettings
from domain.discovery.ensemble import HARD_REJECTION_NOTE, EnsembleResult, EnsembleScores
from domain.discovery.events import watchlist_change, watchlist_changed
from domain.ports.discovery import WatchlistChange, WatchlistChangeKind, WatchlistEntry, WatchlistSource
from domain.ports.uow import UnitOfWork

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


@dataclass(frozen=True)
class WatchlistPlan:
    """What a discovery run changes.

    Attributes:
        added: new discovered entries.
        removed: (entry, reason) of discovered entries taken off.
        refreshed: discovered entries kept, with their new score and reason.
    """

    added: list[WatchlistEntry] = field(default_factory=list)
    removed: list[tuple[WatchlistEntry, str]] = field(default_factory=list)
    refreshed: list[WatchlistEntry] = field(default_factory=list)


def normalize_symbol(symbol: str) -> str:
    """Upper-cased ticker, validated (1-10 letters, digits, dots or dashes, starting with a letter).

    Raises:
        ValueError: not a ticker.
    """
    s = symbol.strip().upper()
    if not SYMBOL.match(s):
        raise ValueError(f"{symbol!r} is not a ticker symbol")
    return s


def _added_reason(r: EnsembleResult) -> str:
    agreed = ", ".join(r.agreed) or "no picker"
    return f"discovered: ensemble score {r.score:.2f}, rank {r.rank} (agreed: {agreed})"


def _drop_reason(r: EnsembleResult | None, min_score: float, margin: float = 0.0) -> str | None:
    if r is None:
        return "no longer in the tradable universe (not scored by this discovery run)"
    if HARD_REJECTION_NOTE in r.reasons:
        metric = next((line for line in r.reasons if line.startswith("metric: ")), "metric: hard filter")
        return f"rejected by the metric picker's hard filter ({metric.removeprefix('metric: ')})"
    if r.score < min_score - margin:
        if margin <= 0:
            return f"ensemble score {r.score:.2f} fell below the minimum {min_score:.2f}"
        return (f"ensemble score {r.score:.2f} fell below {min_score - margin:.2f} (the minimum {min_score:.2f} "
                f"less a {margin:.2f} margin against flapping)")
    return None


def plan_discovery_update(current: Sequence[WatchlistEntry], ranked: Sequence[EnsembleResult], *,
                          settings: DiscoverySettings, as_of: datetime,
                          blocked: frozenset[str] = frozenset(), keep_margin: float = 0.05) -> WatchlistPlan:
    """The watchlist changes a discovery run makes (see the module docstring for the rules).

    Args:
        current: the watchlist now.
        ranked: the ensemble's results of the run, best first.
        settings: `max_watchlist_size`, `top_n` and `min_score`.
        as_of: time of the run (the `added_at` of new entries; kept entries keep theirs).
        blocked: symbols discovery must not add (recently removed by hand).
        keep_margin: how far below `min_score` a discovered symbol already listed may score and stay.

    Returns:
        Additions, removals with reasons, and refreshed entries.
    """
    by_symbol = {r.symbol: r for r in ranked}
    manual = {e.symbol for e in current if e.source == "manual"}
    discovered = [e for e in current if e.source == "discovered"]
    plan = WatchlistPlan()
    kept: list[tuple[EnsembleResult, WatchlistEntry | None]] = []
    for entry in discovered:
        result = by_symbol.get(entry.symbol)
        reason = _drop_reason(result, settings.min_score, keep_margin)
        if reason is not None or result is None:
            plan.removed.append((entry, reason or "not scored"))
        else:
            kept.append((result, entry))
    on_list = manual | {e.symbol for e in discovered}
    fresh = [r for r in ranked if r.symbol not in on_list and r.symbol not in blocked and r.score > 0
             and _drop_reason(r, settings.min_score) is None][: settings.top_n]
    pool = sorted(kept + [(r, None) for r in fresh], key=lambda t: (-t[0].score, t[0].rank, t[0].symbol))
    room = max(0, settings.max_watchlist_size - len(manual))
    for i, (result, kept_entry) in enumerate(pool):
        if i >= room:
            if kept_entry is not None:
                plan.removed.append((kept_entry, f"watchlist full ({settings.max_watchlist_size} symbols): displaced "
                                            f"by higher-scoring symbols (score {result.score:.2f})"))
            continue
        since = as_of if kept_entry is None else kept_entry.added_at
        new = WatchlistEntry(result.symbol, "discovered", _added_reason(result), since, result.score)
        (plan.added if kept_entry is None else plan.refreshed).append(new)
    return plan


def watchlist_candidates(ensemble: EnsembleScores, current: Sequence[WatchlistEntry], blocked: Collection[str],
                         top_n: int) -> list[EnsembleResult]:
    """The part of a run's ranking `plan_discovery_update` looks at, best first (the rest is never built).

    That is the discovered symbols on the list (kept or dropped by their result) and the best ranks: the plan
    adds the best `top_n` ranked symbols that qualify and are neither listed nor blocked, and qualifying
    (a score above 0 and at least `min_score`) is a score threshold while the ranking is by score first, so
    the first `top_n` + listed + blocked ranks hold every symbol it can add.
    """
    skip = {e.symbol for e in current} | set(blocked)
    head = ensemble.top(top_n + len(skip))
    seen = {r.symbol for r in head}
    listed = ensemble.results_for(e.symbol for e in current if e.source == "discovered" and e.symbol not in seen)
    return sorted([*head, *listed], key=lambda r: r.rank)


class WatchlistManager:
    """Applies discovery runs and manual edits to the watchlist of one scope, recording every change."""

    def __init__(self, settings: DiscoverySettings, *, scope: str,
                 manual_removal_block: timedelta = timedelta(days=7), keep_margin: float = 0.05) -> None:
        """Create the manager.

        Args:
            settings: size limits and thresholds.
            scope: the watchlist's scope.
            manual_removal_block: how long discovery leaves alone a symbol a person removed.
            keep_margin: how far below `min_score` a listed discovered symbol may score and stay.
        """
        self.settings = settings
        self.scope = scope
        self._block = manual_removal_block
        self._margin = keep_margin

    async def entries(self, uow: UnitOfWork) -> list[WatchlistEntry]:
        """The watchlist, by symbol."""
        return await uow.watchlist.list(self.scope)

    async def apply_discovery(self, uow: UnitOfWork, ranked: Sequence[EnsembleResult] | EnsembleScores, *,
                              as_of: datetime) -> list[WatchlistChange]:
        """Update the watchlist from a run's ranking (in the caller's transaction). Returns the changes.

        Args:
            uow: the caller's unit of work.
            ranked: the run's ensemble results best first, or its `EnsembleScores` (results are then built
                only for the ranks the plan can use, see `watchlist_candidates`).
            as_of: time of the run.
        """
        current = await uow.watchlist.list(self.scope)
        recent = await uow.watchlist.changes(self.scope, since=as_of - self._block, limit=10_000)
        latest: dict[str, WatchlistChange] = {}
        for c in recent:  # newest first
            latest.setdefault(c.symbol, c)
        blocked = frozenset(s for s, c in latest.items() if c.change == "remove" and c.source == "manual")
        if isinstance(ranked, EnsembleScores):
            ranked = watchlist_candidates(ranked, current, blocked, self.settings.top_n)
        plan = plan_discovery_update(current, ranked, settings=self.settings, as_of=as_of, blocked=blocked,
                                     keep_margin=self._margin)
        changes = []
        for entry, reason in plan.removed:
            await uow.watchlist.remove(self.scope, entry.symbol)
            changes.append(await self._record(uow, entry.symbol, "remove", "discovered", reason, as_of, entry.score))
        for entry in plan.refreshed:
            await uow.watchlist.upsert(self.scope, entry)
        for entry in plan.added:
            await uow.watchlist.upsert(self.scope, entry)
            changes.append(await self._record(uow, entry.symbol, "add", "discovered", entry.reason, as_of,
                                              entry.score))
        await self._summarise(uow, changes, "by discovery", as_of)
        return changes

    async def add_manual(self, uow: UnitOfWork, symbol: str, *, reason: str, as_of: datetime) -> list[WatchlistChange]:
        """Add `symbol` by hand (a discovered symbol becomes manual). Returns the changes (none if already manual).

        When the list is full the lowest-scoring discovered symbol makes room.

        Raises:
            ValueError: not a ticker, no reason, or the list is full of manual symbols.
        """
        symbol = normalize_symbol(symbol)
        if not reason.strip():
            raise ValueError("give a reason for adding the symbol")
        current = await uow.watchlist.list(self.scope)
        existing = next((e for e in current if e.symbol == symbol), None)
        if existing is not None and existing.source == "manual":
            return []
        changes = []
        manual = [e for e in current if e.source == "manual"]
        others = sorted((e for e in current if e.source == "discovered" and e.symbol != symbol),
                        key=lambda e: (e.score or 0.0, e.symbol))
        if len(manual) >= self.settings.max_watchlist_size:
            raise ValueError(f"the watchlist holds {len(manual)} manual symbols, its maximum "
                             f"({self.settings.max_watchlist_size}); remove one first")
        while existing is None and len(manual) + len(others) + 1 > self.settings.max_watchlist_size:
            out = others.pop(0)
            await uow.watchlist.remove(self.scope, out.symbol)
            changes.append(await self._record(uow, out.symbol, "remove", "manual", f"watchlist full "
                                              f"({self.settings.max_watchlist_size} symbols): displaced by manual "
                                              f"{symbol}", as_of, out.score))
        await uow.watchlist.upsert(self.scope, WatchlistEntry(symbol, "manual", reason.strip(), as_of))
        changes.append(await self._record(uow, symbol, "add", "manual", reason.strip(), as_of, None))
        await self._summarise(uow, changes, "by hand", as_of)
        return changes

    async def remove_manual(self, uow: UnitOfWork, symbol: str, *, reason: str, as_of: datetime) -> WatchlistChange:
        """Remove `symbol` by hand (manual or discovered); discovery will not re-add it for a while.

        Raises:
            ValueError: not a ticker, no reason, or not on the watchlist.
        """
        symbol = normalize_symbol(symbol)
        if not reason.strip():
            raise ValueError("give a reason for removing the symbol")
        entry = await uow.watchlist.get(self.scope, symbol)
        if entry is None:
            raise ValueError(f"{symbol} is not on the watchlist")
        await uow.watchlist.remove(self.scope, symbol)
        change = await self._record(uow, symbol, "remove", "manual", reason.strip(), as_of, entry.score)
        await self._summarise(uow, [change], "by hand", as_of)
        return change

    async def _record(self, uow: UnitOfWork, symbol: str, kind: WatchlistChangeKind, source: WatchlistSource,
                      reason: str, at: datetime, score: float | None) -> WatchlistChange:
        stored = await uow.watchlist.add_change(WatchlistChange(self.scope, symbol, kind, source, reason, at))
        await uow.events.add([watchlist_change(at=at, scope=self.scope, symbol=symbol, change=kind, source=source,
                                               reason=reason, score=score)])
        return stored

    async def _summarise(self, uow: UnitOfWork, changes: Sequence[WatchlistChange], who: str, at: datetime) -> None:
        """One INFO event for all `changes` (nothing when there are none)."""
        if not changes:
            return
        added = [c.symbol for c in changes if c.change == "add"]
        removed = [c.symbol for c in changes if c.change == "remove"]
        size = len(await uow.watchlist.list(self.scope))
        lines = "; ".join(f"{'+' if c.change == 'add' else '-'}{c.symbol} ({c.reason})" for c in changes)
        symbol = changes[0].symbol if len(changes) == 1 else None
        await uow.events.add([watchlist_changed(at=at, scope=self.scope, who=who, added=added, removed=removed,
                                                reasons={c.symbol: c.reason for c in changes}, lines=lines,
                                                size=size, symbol=symbol)])


def watchlist_universe(scope: str, fallback: Universe | None = None) -> Universe:
    """A trading-cycle universe: the watchlist's symbols, or `fallback`'s while the watchlist is empty."""

    async def universe(uow: UnitOfWork, as_of: datetime) -> list[str]:
        entries = await uow.watchlist.list(scope)
        if entries or fallback is None:
            return [e.symbol for e in entries]
        return await fallback(uow, as_of)

    return universe
