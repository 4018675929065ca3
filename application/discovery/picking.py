"""Which symbols get the expensive treatment: memory recall and the LLM prompt.

Both are capped so a run stays cheap: trades are recalled only for symbols that passed the metric
filters or rank in the fuzzy picker's top N before memory is applied (at most `recall_limit`, best
prescore first), and the LLM sees at most `DiscoverySettings.llm_candidates` symbols in one prompt:
those that passed the metric filters (when the metric picker runs), best fuzzy score first. Both work
on the pickers' score arrays; no per-symbol result object is built here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

import numpy as np

from application.discovery.inputs import MarketInputs
from domain.agents.schemas import MarketConditions, MemoryEvidence, SymbolFeatures
from domain.discovery.llm_schema import LLMPickerContext, PickerCandidate, PortfolioSummary
from domain.discovery.picker_scores import PickerScores


def _same_universe(a: PickerScores, b: PickerScores) -> None:
    if a.symbols is not b.symbols and a.symbols != b.symbols:
        raise ValueError(f"{a.picker} and {b.picker} scored different universes")


def recall_candidates(metric: PickerScores, prescore: PickerScores, *, top: int, limit: int) -> list[str]:
    """Symbols whose similar past trades are recalled, best fuzzy prescore first (score, then symbol).

    Args:
        metric: the metric picker's scores (its passing symbols qualify).
        prescore: the fuzzy picker's scores before memory is applied (its top `top` qualify).
        top: how many of the best prescores qualify regardless of the metric filters.
        limit: the most symbols recalled.
    """
    _same_universe(metric, prescore)
    order = prescore.order()
    wanted = metric.passed.copy()
    wanted[order[: max(top, 0)]] = True
    return [prescore.symbols[i] for i in order[wanted[order]][: max(limit, 0)].tolist()]


def llm_shortlist(metric: PickerScores, fuzzy: PickerScores, features: Collection[str], *,
                  require_metric: bool, n: int) -> list[str]:
    """The LLM's candidates: (metric-passing) symbols with features, best fuzzy score first, at most `n`."""
    _same_universe(metric, fuzzy)
    rows = [i for s in features if (i := fuzzy.index(s)) is not None]
    eligible = np.zeros(len(fuzzy.symbols), dtype=bool)
    eligible[rows] = True
    eligible &= fuzzy.returned
    if require_metric:
        eligible &= metric.passed
    return [fuzzy.symbols[i] for i in fuzzy.order(np.flatnonzero(eligible))[: max(n, 0)].tolist()]


def scores_of(scores: PickerScores, symbols: Sequence[str]) -> dict[str, float]:
    """symbol -> score, for those of `symbols` the picker returned."""
    rows = {s: i for s in symbols if (i := scores.index(s)) is not None and scores.returned[i]}
    return {s: float(scores.score[i]) for s, i in rows.items()}


def llm_context(as_of: datetime, shortlist: Sequence[str], features: Mapping[str, SymbolFeatures],
                similar: Mapping[str, Sequence[MemoryEvidence]], prescores: Mapping[str, float],
                market: MarketInputs, portfolio: PortfolioSummary,
                conditions: MarketConditions | None) -> LLMPickerContext:
    """The typed context of the one LLM picker prompt."""
    candidates = []
    for symbol in shortlist:
        record = market.fundamentals.get(symbol)
        f = features[symbol].model_copy(update={"similar_trades": tuple(similar.get(symbol, ()))})
        candidates.append(PickerCandidate(
            symbol=symbol, sector=None if record is None else record.sector,
            market_cap=None if record is None else record.market_cap,
            prescore=round(min(1.0, max(0.0, prescores.get(symbol, 0.0))), 6), features=f))
    return LLMPickerContext(as_of=as_of.isoformat(), portfolio=portfolio, market=conditions,
                            candidates=tuple(candidates))
