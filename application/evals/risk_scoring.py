"""The risk suite: each answer checked against its row's hard limits and relabelled with its own stop."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from application.evals.grid import Grid, Resampling, cluster_ci, failure_rate, mean
from application.evals.suites import Answer
from domain.evals.barriers import Barriers, triple_barrier
from domain.evals.bootstrap import Array, Estimate
from domain.evals.risk_metrics import TIGHT_STOP_ATR
from domain.evals.rows import RiskRow

EPS = 1e-12


@dataclass(frozen=True)
class RiskAnswers:
    """Per-answer quantities of the risk suite (NaN for failures)."""

    stop_atr: Array
    stop_hit: Array
    loss: Array
    loss_within: Array
    sizes_within: Array
    gross_breach: Array
    position_vs_reference: Array
    stop_vs_reference: Array
    pnl: Array
    pnl_vs_reference: Array

    def breach(self) -> Array:
        """1 when any hard limit is breached (NaN for failures)."""
        return 1.0 - self.sizes_within * self.loss_within * (1.0 - self.gross_breach)


def _relabel(row: RiskRow, a: Answer) -> tuple[float, float]:
    """(stop hit, realised return) of the row's trade with the agent's own stop and take-profit."""
    if not a.ok or a.stop_pct is None:
        return math.nan, math.nan
    label = triple_barrier(row.outcome.forward.path(),
                           Barriers(a.stop_pct, a.take_profit_pct, row.outcome.max_sessions))
    return (1.0 if label.barrier == "stop" else 0.0), label.realised_return


def risk_answers(g: Grid) -> RiskAnswers:
    """The risk quantities of every answer, checked against each row's own limits."""
    rows: Sequence[RiskRow] = g.rows  # type: ignore[assignment]
    pos = g.answer_values(lambda a: a.position_pct)
    stop = g.answer_values(lambda a: a.stop_pct)
    atr = g.row_values(lambda r: r.context.candidates[0].atr_pct)

    def limit(name: str) -> Array:
        return g.row_values(lambda r: float(getattr(r.limits, name)))

    lim = {name: limit(name) for name in (
        "max_position_pct", "min_stop_pct", "max_stop_pct", "loss_limit_pct", "max_gross_exposure_pct")}
    gross = g.row_values(lambda r: r.context.gross_exposure_pct)
    relabelled = [[_relabel(r, a) for a in line] for r, line in zip(rows, g.answers, strict=True)]
    hit = np.array([[x[0] for x in line] for line in relabelled], dtype=np.float64).reshape(g.ok.shape)
    ret = np.array([[x[1] for x in line] for line in relabelled], dtype=np.float64).reshape(g.ok.shape)
    ref_pos = g.row_values(lambda r: r.reference.position_pct)
    ref_pnl = ref_pos * g.row_values(lambda r: r.outcome.realised_return)
    with np.errstate(divide="ignore", invalid="ignore"):
        stop_atr = np.where(atr > 0, stop / np.where(atr > 0, atr, 1.0), 0.0)
    loss = pos * stop

    def flag(x: Array) -> Array:
        return np.where(np.isnan(pos) | np.isnan(stop), math.nan, x.astype(np.float64))

    within = (pos <= lim["max_position_pct"] + EPS) & (stop >= lim["min_stop_pct"] - EPS) & (
        stop <= lim["max_stop_pct"] + EPS)
    return RiskAnswers(
        stop_atr=np.where(np.isnan(stop), math.nan, stop_atr), stop_hit=hit, loss=loss,
        loss_within=flag(loss <= lim["loss_limit_pct"] + EPS), sizes_within=flag(within),
        gross_breach=flag(gross + pos > lim["max_gross_exposure_pct"] + EPS),
        position_vs_reference=pos - ref_pos, stop_vs_reference=stop - g.row_values(lambda r: r.reference.stop_pct),
        pnl=pos * ret, pnl_vs_reference=pos * ret - ref_pnl)


def risk_metrics(g: Grid, how: Resampling) -> dict[str, Estimate]:
    """Limits, stops (in ATRs, hit within the horizon), sizes against the reference, P&L at the agent's barriers."""
    x = risk_answers(g)

    def ci(values: Array, stat: Callable[[Array], float] = mean) -> Estimate:
        return cluster_ci(stat, g, values, how=how)

    return {
        "limit_breach": ci(x.breach()),
        "sizes_within_limits": ci(x.sizes_within),
        "loss_within_limit": ci(x.loss_within),
        "gross_exposure_breach": ci(x.gross_breach),
        "loss_at_stop": ci(x.loss),
        "stop_atr_multiple": ci(x.stop_atr, lambda m: float(np.median(m))),
        "tight_stop_share": ci(x.stop_atr, lambda m: float(np.mean(m < TIGHT_STOP_ATR))),
        "stop_hit_rate": ci(x.stop_hit),
        "position_vs_reference": ci(x.position_vs_reference),
        "stop_vs_reference": ci(x.stop_vs_reference),
        "pnl_pct_equity": ci(x.pnl),
        "pnl_vs_reference": ci(x.pnl_vs_reference),
        "failure_rate": failure_rate(g, how),
    }
