"""Picker performance: how each picker's suggestions (and the ensemble's) did against the equal-weighted universe.

Per picker and horizon, over the suggestions whose forward return and universe return are both known:
- hit rate: share whose forward return beat the universe's over the same window (excess > 0);
- average forward return, average universe return and average excess return.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from domain.discovery.ensemble import PICKER_ORDER
from domain.discovery.evaluation import HorizonPerformance
from domain.ports.discovery import ENSEMBLE, HORIZONS, Suggestion
from domain.ports.uow import UnitOfWork

__all__ = ["PICKERS", "HorizonPerformance", "horizon_performance", "load_performance", "picker_performance"]
PICKERS = (*PICKER_ORDER, ENSEMBLE)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def horizon_performance(suggestions: Iterable[Suggestion], horizon: int) -> HorizonPerformance:
    """Hit rate and averages of `suggestions` at `horizon` (those without both returns are skipped)."""
    pairs = [(s.forward_returns[horizon], s.universe_returns[horizon]) for s in suggestions
             if horizon in s.forward_returns and horizon in s.universe_returns]
    excess = [f - u for f, u in pairs]
    hits = sum(1 for e in excess if e > 0)
    return HorizonPerformance(horizon, len(pairs), hits / len(pairs) if pairs else None,
                              _mean([f for f, _ in pairs]), _mean([u for _, u in pairs]), _mean(excess))


def picker_performance(suggestions: Iterable[Suggestion],
                       horizons: Sequence[int] = HORIZONS) -> dict[str, dict[int, HorizonPerformance]]:
    """Performance per picker (metric, fuzzy, llm, ensemble; those with suggestions) and horizon."""
    by_picker: dict[str, list[Suggestion]] = {}
    for s in suggestions:
        by_picker.setdefault(s.picker, []).append(s)
    return {p: {h: horizon_performance(by_picker[p], h) for h in horizons} for p in PICKERS if p in by_picker}


async def load_performance(uow: UnitOfWork, scope: str, *, since: datetime | None = None,
                           until: datetime | None = None) -> dict[str, dict[int, HorizonPerformance]]:
    """Performance of the suggestions of `scope` made in [since, until)."""
    rows = await uow.suggestions.list(scope, since=since, until=until, limit=10_000_000)
    return picker_performance(rows)
