"""Which symbols get the expensive treatment: memory recall and the LLM prompt.

Both are capped so a run stays cheap: trades are recalled only for symbols that passed the metric
filters or rank in the fuzzy picker's top N before memory is applied (at most `recall_limit`, best
prescore first), and the LLM sees at most `DiscoverySettings.llm_candidates` symbols in one prompt:
those that passed the metric filters (when the metric picker runs), best fuzzy score first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from application.discovery.inputs import MarketInputs
from domain.agents.schemas import MarketConditions, MemoryEvidence, SymbolFeatures
from domain.discovery.llm_schema import LLMPickerContext, PickerCandidate, PortfolioSummary
from domain.discovery.picker import PickerResult


def _by_score(results: Sequence[PickerResult]) -> list[PickerResult]:
    return sorted(results, key=lambda r: (-r.score, r.symbol))


def recall_candidates(metric: Sequence[PickerResult], prescore: Sequence[PickerResult], *, top: int,
                      limit: int) -> list[str]:
    """Symbols whose similar past trades are recalled, best fuzzy prescore first.

    Args:
        metric: the metric picker's results (its passing symbols qualify).
        prescore: the fuzzy picker's results before memory is applied (its top `top` qualify).
        top: how many of the best prescores qualify regardless of the metric filters.
        limit: the most symbols recalled.
    """
    passed = {r.symbol for r in metric if r.passed}
    ranked = _by_score(prescore)
    best = {r.symbol for r in ranked[:top]}
    return [r.symbol for r in ranked if r.symbol in passed or r.symbol in best][:limit]


def llm_shortlist(metric: Sequence[PickerResult], fuzzy: Sequence[PickerResult],
                  features: Mapping[str, SymbolFeatures], *, require_metric: bool, n: int) -> list[str]:
    """The LLM's candidates: (metric-passing) symbols with features, best fuzzy score first, at most `n`."""
    passed = {r.symbol for r in metric if r.passed}
    return [r.symbol for r in _by_score(fuzzy)
            if r.symbol in features and (not require_metric or r.symbol in passed)][:n]


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
