"""A stratified, blind sample of the bake-off's decisions for people to rate.

Strata are suite x outcome (whether the scenario's trade won or lost) x model, over the valid answers (a failure
has nothing to rate). One decision is taken from each stratum in turn, round after round, until `n` are taken:
every stratum is represented before any has two, and the models get about the same share. Within a stratum the
order is random, but a second answer to a row (a repeat) comes only after one answer to each of its rows. Models
are named by letters given in a random order, the sample is shuffled, and model and provider names are scrubbed
from the text; the key (letters -> models, and each item's model, row, repeat and outcome) is kept apart. One
seed drives every draw: the same runs and seed give the same sample.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from application.evals.run_results import EvalRun
from application.evals.suites import Answer, EvalRow
from domain.agents.schemas import MarketConditions, MemoryEvidence, RiskContext, SignalContext, ValidatorContext

SAMPLE_SIZE = 20
COLUMNS = ("item", "model", "suite", "context", "answer", "reasoning", "rating", "would_act", "notes")
RATING_COLUMNS = {
    "rating": "1 (unsound) to 5 (sound): is the reasoning right about what the context shows?",
    "would_act": "yes or no: would you act on this answer?",
    "notes": "anything else (free text)",
}
HIDDEN = "[model]"


@dataclass(frozen=True)
class RatedDecision:
    """One valid answer of one model to one row."""

    model: str
    suite: str
    row: EvalRow
    answer: Answer

    @property
    def outcome(self) -> str:
        """"won" or "lost": what the scenario's trade did."""
        return "won" if self.row.outcome.win else "lost"


@dataclass(frozen=True)
class BlindSample:
    """The sample and its key.

    Attributes:
        rows: one dict per decision with the `COLUMNS` (the rating columns empty), in the shuffled order.
        key: letters -> models and, per item, its model, suite, row, repeat and outcome.
    """

    rows: list[dict[str, str]]
    key: dict[str, Any]


def decisions(runs: Mapping[str, EvalRun]) -> list[RatedDecision]:
    """Every valid answer of every model, model by model, suite by suite, row by row."""
    out: list[RatedDecision] = []
    for model, run in runs.items():
        for suite, result in run.suites.items():
            for row, line in zip(result.grid.rows, result.grid.answers, strict=True):
                out.extend(RatedDecision(model, suite, row, a) for a in line if a.ok)
    return out


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def _market(m: MarketConditions) -> str:
    return m.text or (f"VIX {m.vix}, SPY {m.spy_trend}, {_pct(m.spy_return_20d)} over 20 days")


def _evidence(items: Sequence[MemoryEvidence]) -> str:
    if not items:
        return ""
    won = sum(1 for e in items if (e.return_pct or 0.0) > 0)
    return f"; {len(items)} similar past trades, {won} won"


def _signal_context(c: SignalContext) -> str:
    s = c.symbols[0]
    held = f"; holds {s.held_qty:g} shares" if s.held_qty else ""
    return (f"{s.symbol}: price {s.price:.2f}; return 1d {_pct(s.return_1d)}, 5d {_pct(s.return_5d)}, 20d "
            f"{_pct(s.return_20d)}, 60d {_pct(s.return_60d)}; SMA 20 {s.sma_20:.2f}, SMA 50 {s.sma_50:.2f}; "
            f"volatility {s.volatility_20d:.0%} a year, ATR {s.atr_pct:.1%}; volume {s.volume_ratio:.2f}x its "
            f"20-day average (${s.avg_dollar_volume_20d / 1e6:,.1f}M a day){held}{_evidence(s.similar_trades)}. "
            f"Market: {_market(c.market)}")


def _risk_context(c: RiskContext) -> str:
    k = c.candidates[0]
    return (f"{k.symbol} {k.action} at confidence {k.confidence:.2f}, price {k.price:.2f}, volatility "
            f"{k.volatility_20d:.0%} a year, ATR {k.atr_pct:.1%}. Account: equity ${c.equity:,.0f}, cash "
            f"${c.cash:,.0f}, gross exposure {c.gross_exposure_pct:.0%}; at most {c.max_position_pct:.0%} a "
            f"position, default stop {c.default_stop_pct:.1%}")


def _validator_context(c: ValidatorContext) -> str:
    k = c.candidates[0]
    warnings = f"; rule warnings: {'; '.join(k.rule_warnings)}" if k.rule_warnings else ""
    return (f"{k.symbol} {k.action} at confidence {k.confidence:.2f}, position {k.position_pct:.1%}, stop "
            f"{k.stop_loss_pct:.1%}; proposed because: {k.reasoning}{_evidence(k.similar_trades)}{warnings}. "
            f"Market: {_market(c.market)}")


def context_summary(row: EvalRow) -> str:
    """What the agent saw, in one paragraph (never what followed)."""
    c = row.context
    if isinstance(c, RiskContext):
        return _risk_context(c)
    if isinstance(c, ValidatorContext):
        return _validator_context(c)
    return _signal_context(c)


def answer_text(a: Answer) -> str:
    """The answer in a few words."""
    if a.action is not None:
        return f"{a.action} at confidence {a.confidence or 0.0:.2f}"
    if a.approve is not None:
        return "approve" if a.approve else "reject"
    tp = "none" if a.take_profit_pct is None else f"{a.take_profit_pct:.1%}"
    return f"position {a.position_pct or 0.0:.1%} of equity, stop {a.stop_pct or 0.0:.1%}, take-profit {tp}"


def _stratified(items: list[RatedDecision], letters: Mapping[str, str], n: int,
                rng: np.random.Generator) -> list[RatedDecision]:
    strata: dict[tuple[str, str, str], list[RatedDecision]] = {}
    for d in items:
        strata.setdefault((d.suite, d.outcome, letters[d.model]), []).append(d)
    for key, found in strata.items():
        seen: set[str] = set()
        first: list[RatedDecision] = []
        again: list[RatedDecision] = []
        for i in rng.permutation(len(found)):
            d = found[i]
            (again if d.row.id in seen else first).append(d)
            seen.add(d.row.id)
        strata[key] = first + again
    groups = sorted({(s, o) for s, o, _ in strata})
    order = [(*groups[i], letter) for i in rng.permutation(len(groups)) for letter in sorted(set(letters.values()))]
    queues = [strata[k] for k in order if k in strata]
    taken: list[RatedDecision] = []
    depth = 0
    while len(taken) < n and any(depth < len(q) for q in queues):
        taken += [q[depth] for q in queues if depth < len(q)][: n - len(taken)]
        depth += 1
    return taken


def _scrubber(models: Sequence[str]) -> re.Pattern[str] | None:
    names = {m for model in models for m in (model, *model.split("/", 1)) if len(m) >= 3}
    if not names:
        return None
    return re.compile("|".join(re.escape(m) for m in sorted(names, key=len, reverse=True)), re.IGNORECASE)


def blind_sample(runs: Mapping[str, EvalRun], n: int = SAMPLE_SIZE, seed: int = 0) -> BlindSample:
    """`n` decisions stratified by suite, outcome and model, blind to the model (see the module doc).

    Raises:
        ValueError: `n` < 1, or more models than letters.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    models = list(runs)
    if len(models) > len(string.ascii_uppercase):
        raise ValueError(f"at most {len(string.ascii_uppercase)} models can be lettered")
    rng = np.random.default_rng(seed)
    letters = {models[i]: string.ascii_uppercase[k] for k, i in enumerate(rng.permutation(len(models)))}
    taken = _stratified(decisions(runs), letters, n, rng)
    taken = [taken[i] for i in rng.permutation(len(taken))]
    scrub = _scrubber(models)

    def blind(text: str) -> str:
        return scrub.sub(HIDDEN, text) if scrub is not None else text

    rows = [{"item": str(i), "model": letters[d.model], "suite": d.suite, "context": blind(context_summary(d.row)),
             "answer": answer_text(d.answer), "reasoning": blind(d.answer.reasoning or ""),
             **dict.fromkeys(RATING_COLUMNS, "")} for i, d in enumerate(taken, start=1)]
    strata = Counter(f"{d.suite}/{d.outcome}/{letters[d.model]}" for d in taken)
    key = {"seed": seed, "n": len(rows), "letters": {letter: m for m, letter in sorted(letters.items(),
                                                                                        key=lambda x: x[1])},
           "rating_columns": RATING_COLUMNS, "strata": dict(sorted(strata.items())),
           "items": [{"item": i, "letter": letters[d.model], "model": d.model, "suite": d.suite, "row": d.row.id,
                      "repeat": d.answer.repeat, "outcome": d.outcome,
                      "realised_return": d.row.outcome.realised_return} for i, d in enumerate(taken, start=1)]}
    return BlindSample(rows, key)
