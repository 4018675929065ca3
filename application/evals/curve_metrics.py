"""Figures of a strategy's value curve and its comparison with Quorum's, for the end-to-end backtest eval.

- `metrics`: total and annualised return, Sharpe ratio, maximum drawdown, the probabilistic Sharpe ratio (the
  probability that the true Sharpe ratio is above zero, Bailey & López de Prado 2012) and a stationary-bootstrap
  interval of the Sharpe ratio.
- `compare`: Quorum against another strategy on the same sessions by a paired block bootstrap of the Sharpe
  difference (`domain.evals.sharpe.can_rank`): "better", "worse" or "too short to rank".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from domain.analytics import performance
from domain.evals.sharpe import can_rank, probabilistic_sharpe_ratio, sharpe_interval, sharpe_ratio

TOO_SHORT = "too short to rank"


@dataclass(frozen=True)
class StatSettings:
    """How sure the statistics must be and how hard they resample."""

    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0


def finite(x: float | None) -> float | None:
    """`x`, or None when it is missing, NaN or infinite (JSON has no NaN)."""
    return x if x is not None and math.isfinite(x) else None


def daily_returns(values: Sequence[Decimal]) -> list[float]:
    """Simple returns from each value to the next."""
    return [float(b / a) - 1.0 if a else 0.0 for a, b in itertools.pairwise(values)]


def metrics(days: Sequence[date], values: Sequence[Decimal], stats: StatSettings) -> dict[str, Any]:
    """Return, Sharpe, drawdown, PSR and the Sharpe interval of a value curve (None where undefined).

    Args:
        days: the valuation before the first return, then one day per return.
        values: the value at each of `days`.
        stats: confidence, resamples and seed of the interval.
    """
    p = performance(list(zip(days, values, strict=True)))
    r = daily_returns(values)
    try:
        psr: float | None = probabilistic_sharpe_ratio(r)
    except ValueError:
        psr = None
    ci = (sharpe_interval(r, n_resamples=stats.resamples, confidence=stats.confidence, seed=stats.seed).to_dict()
          if len(r) >= 2 else None)
    return {"total_return": p.total_return, "annualized_return": p.annualized_return,
            "sharpe": finite(sharpe_ratio(r)), "max_drawdown": p.max_drawdown, "psr": finite(psr),
            "sharpe_ci": ci, "final_equity": str(values[-1]), "sessions": len(r)}


def _f(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else "n/a"


def compare(quorum: Sequence[float], other: Sequence[float], stats: StatSettings) -> dict[str, Any]:
    """Quorum's daily returns against another strategy's on the same sessions.

    Returns:
        {"verdict": "better" | "worse" | "too short to rank", "message", "sharpe_difference" (Quorum's Sharpe
        ratio less the other's, with its paired interval), "sessions", "sessions_needed"}.
    """
    v = can_rank(list(quorum), list(other), n_resamples=stats.resamples, confidence=stats.confidence,
                 seed=stats.seed)
    d = v.difference
    span = (f"Sharpe Quorum {_f(v.sharpe_a)} vs {_f(v.sharpe_b)}, difference {_f(d.value)} "
            f"[{_f(d.low)}, {_f(d.high)}] ({stats.confidence:.0%})")
    if v.rankable:
        verdict = "better" if v.leader == "a" else "worse"
        message = f"Quorum ranks {'higher' if verdict == 'better' else 'lower'} over {v.sessions} sessions: {span}"
    elif not (math.isfinite(v.sharpe_a) and math.isfinite(v.sharpe_b)):
        verdict, message = TOO_SHORT, (f"{TOO_SHORT}: a Sharpe ratio is undefined over these {v.sessions} "
                                       f"sessions (a value that never changed)")
    else:
        verdict, message = TOO_SHORT, v.message.replace("Sharpe a ", "Sharpe Quorum ").replace(" vs b ", " vs ")
    return {"verdict": verdict, "message": message, "sharpe_difference": d.to_dict(), "sessions": v.sessions,
            "sessions_needed": v.sessions_needed}


def percentile_of(xs: Sequence[float], x: float) -> float:
    """Where `x` falls among `xs`, 0-100 (ties count half)."""
    return 100.0 * (sum(1 for v in xs if v < x) + 0.5 * sum(1 for v in xs if v == x)) / len(xs)


def spread(xs: Sequence[float]) -> dict[str, float] | None:
    """The 5th, 50th and 95th percentiles of `xs` (None when empty)."""
    if not xs:
        return None
    return dict(zip(("p5", "p50", "p95"), (float(v) for v in np.percentile(xs, [5, 50, 95])), strict=True))


def ordinal(x: float) -> str:
    """`x` rounded, as an ordinal: 1st, 2nd, 3rd, 11th, 83rd."""
    n = round(x)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def counted(n: int, what: str) -> str:
    """`n` and `what`, plural unless n is 1: 1 round trip, 2 round trips."""
    return f"{n} {what}" + ("" if n == 1 else "s")
