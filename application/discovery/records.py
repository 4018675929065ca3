"""What a discovery run stores and reports: suggestion rows (with their JSON details) and discovery events.

Suggestions: per picker, its best `per_picker` passing symbols with a score above 0 (score, then symbol);
for the ensemble, its best `per_picker` symbols with a score above 0 (ensemble rank). Nothing else of the
universe is stored: its scores stay arrays, and result objects (with their reasons) are built only for
the suggested symbols. Divergence is kept useful: one DISCOVERY_DIVERGENCE event per run at most, naming
only divergent symbols some picker suggested, at most `MAX_DIVERGENT` of them, the widest disagreement
(spread of picker scores) first, with how much the pickers' suggestions overlap. The DISCOVERY_RUN event
counts the symbols at or above `min_score`, names the best ten and states the filters the run skipped
(their data missing for the whole universe).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

import numpy as np

from domain.discovery.ensemble import PICKER_ORDER, EnsembleResult, EnsembleScores
from domain.discovery.events import discovery_divergence, discovery_run
from domain.discovery.picker_scores import PickerScores
from domain.events import Event
from domain.ids import short_hash
from domain.money import price
from domain.ports.discovery import ENSEMBLE, DiscoveryRun, Suggestion, WatchlistChange

MAX_DIVERGENT = 5


def run_id_for(scope: str, as_of: datetime, *, tz: tzinfo) -> str:
    """Deterministic run id: the same scope and time always give the same id (a retried run is recognised); it
    starts with the exchange-local time (`tz`)."""
    raw = f"{scope}|{as_of.astimezone(UTC).isoformat()}"
    return f"d-{as_of.astimezone(tz):%Y%m%d-%H%M}-{short_hash(raw, 10)}"


def _finite(details: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in details.items() if isinstance(v, int | float) and math.isfinite(v)}


def suggestions_for(run: DiscoveryRun, by_picker: Mapping[str, PickerScores], ensemble: EnsembleScores, *,
                    per_picker: int, min_score: float, prices: Mapping[str, float | None]) -> list[Suggestion]:
    """The suggestion rows of a run (see the module docstring)."""

    def entry(symbol: str) -> Decimal | None:
        px = prices.get(symbol)
        return None if px is None else price(px)

    out: list[Suggestion] = []
    for name in PICKER_ORDER:
        if name not in by_picker:
            continue
        scores = by_picker[name]
        for rank, r in enumerate(scores.results(scores.best(per_picker)), start=1):
            out.append(Suggestion(run.id, run.scope, name, r.symbol, r.score, rank, run.as_of, r.reasons,
                                  {"measures": _finite(r.details)}, entry(r.symbol)))
    for e in [e for e in ensemble.top(per_picker) if e.score > 0]:
        out.append(Suggestion(run.id, run.scope, ENSEMBLE, e.symbol, e.score, e.rank, run.as_of, e.reasons,
                              ensemble_details(e, min_score), entry(e.symbol)))
    return out


def ensemble_details(r: EnsembleResult, min_score: float) -> dict[str, Any]:
    """The stored `Suggestion.details` of an ensemble result (a JSON document): agreement, divergence and
    component scores."""
    return {"agreed": list(r.agreed), "dissent": list(r.dissent), "divergent": r.divergent,
            "divergence_reason": r.divergence_reason, "components": dict(r.components),
            "qualified": r.score >= min_score}


def _spread(r: EnsembleResult) -> float:
    values = list(r.components.values())
    return max(values) - min(values) if values else 0.0


def strongest_divergences(ranked: Sequence[EnsembleResult], suggested: Collection[str],
                          limit: int = MAX_DIVERGENT) -> list[EnsembleResult]:
    """Divergent symbols among `suggested`, widest spread of picker scores first, then best rank; at most `limit`."""
    return sorted((r for r in ranked if r.divergent and r.symbol in suggested),
                  key=lambda r: (-_spread(r), r.rank))[:limit]


def divergence_events(run: DiscoveryRun, divergent: Sequence[EnsembleResult],
                      suggestions: Sequence[Suggestion]) -> list[Event]:
    """The run's DISCOVERY_DIVERGENCE event (none without divergent symbols).

    Payload: pickers, overlap (Jaccard overlap of the pickers' suggestions), only_in (picker -> symbols no
    other picker suggested), symbols and spread (symbol -> spread of picker scores), run_id.
    """
    if not divergent:
        return []
    sets = {p: {s.symbol for s in suggestions if s.picker == p} for p in PICKER_ORDER if p in run.pickers}
    union = set().union(*sets.values()) if sets else set()
    common = set.intersection(*sets.values()) if sets else set()
    only_in = {p: sorted(mine - set().union(*(v for q, v in sets.items() if q != p))) for p, mine in sets.items()}
    text = "; ".join(f"{r.symbol}: {r.divergence_reason}" for r in divergent)
    return [discovery_divergence(
        at=run.as_of, scope=run.scope, symbols=[r.symbol for r in divergent], text=text,
        payload={"run_id": run.id, "pickers": list(sets), "overlap": len(common) / len(union) if union else 0.0,
                 "only_in": {p: v for p, v in only_in.items() if v}, "symbols": [r.symbol for r in divergent],
                 "spread": {r.symbol: round(_spread(r), 4) for r in divergent}})]


def run_event(run: DiscoveryRun, ensemble: EnsembleScores, changes: Sequence[WatchlistChange],
              *, min_score: float, llm_error: str | None) -> Event:
    """The DISCOVERY_RUN summary event."""
    ranked = ensemble.score[ensemble.order]
    n_qualified = int(np.count_nonzero((ranked >= min_score) & (ranked > 0)))  # a prefix: ranked by score first
    qualified = [(ensemble.symbols[i], float(ensemble.score[i])) for i in ensemble.order[: min(10, n_qualified)]]
    top = ", ".join(f"{symbol} {score:.2f}" for symbol, score in qualified[:5]) or "none"
    added = [c.symbol for c in changes if c.change == "add"]
    removed = [c.symbol for c in changes if c.change == "remove"]
    text = (f"discovery scored {run.universe_size} symbols: {n_qualified} at or above {min_score:.2f} "
            f"(top {top}); watchlist +{len(added)} -{len(removed)}")
    if llm_error:
        text += f"; LLM picker gave nothing ({llm_error})"
    skipped: dict[str, str] = dict(run.stats.get("skipped_filters") or {})
    if skipped:
        text += "; " + "; ".join(skipped.values())
    return discovery_run(at=run.as_of, scope=run.scope, text=text, payload={
        "run_id": run.id, "universe_size": run.universe_size, "qualified": n_qualified,
        "top": [{"symbol": symbol, "score": score} for symbol, score in qualified], "added": added,
        "removed": removed, "llm_error": llm_error, "pickers": list(run.pickers), "skipped_filters": skipped})
