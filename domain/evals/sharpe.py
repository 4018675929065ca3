"""Sharpe ratios that say how sure they are.

- `probabilistic_sharpe_ratio` (PSR) and `min_track_record_length` (MinTRL): Bailey, D. H. and López de Prado, M.
  (2012), "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2), eqs. for PSR and MinTRL. With SR the
  per-period Sharpe ratio, g3 the skewness and g4 the (non-excess) kurtosis of the returns over n periods:
  PSR(SR*) = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)),
  MinTRL = 1 + (1 - g3 SR + (g4 - 1) / 4 SR^2) (z_alpha / (SR - SR*))^2.
- `deflated_sharpe_ratio` (DSR): Bailey, D. H. and López de Prado, M. (2014), "The Deflated Sharpe Ratio",
  Journal of Portfolio Management 40(5): the PSR against the Sharpe ratio the best of N unskilled trials would
  show, SR0 = sqrt(V[SR]) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))), gamma Euler-Mascheroni.
- `sharpe_interval`: a stationary-bootstrap interval (Politis & Romano, 1994) of the annualised Sharpe ratio.
- `can_rank`: whether a window of aligned daily returns is long enough to say which of two strategies is better.

Annualised figures use `periods_per_year` (252 trading days); the formulas work on per-period values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import stats

from domain.evals.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Array,
    Estimate,
    bootstrap_ci,
    default_block_length,
)

PERIODS_PER_YEAR = 252
EULER_GAMMA = 0.5772156649015329


def _returns(returns: Any, minimum: int = 2) -> Array:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or len(r) < minimum:
        raise ValueError(f"need a 1-D series of at least {minimum} returns, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns must be finite")
    return r


def sharpe_ratio(returns: Any, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """Annualised Sharpe ratio mean / stdev (ddof 1) x sqrt(periods_per_year) of excess returns; NaN when flat."""
    r = np.asarray(returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    sd = float(np.std(r, ddof=1))
    if not sd > 0:
        return math.nan
    return float(np.mean(r)) / sd * math.sqrt(periods_per_year)


@dataclass(frozen=True, slots=True)
class Moments:
    """What the PSR needs of a return series: per-period Sharpe, skewness, non-excess kurtosis, length."""

    sharpe: float
    skew: float
    kurtosis: float
    n: int

    @classmethod
    def of(cls, returns: Any) -> Moments:
        """Sample moments (skewness and kurtosis are the plain moment estimators, as in Bailey & López de Prado).

        Raises:
            ValueError: fewer than 3 returns, or returns that never change.
        """
        r = _returns(returns, 3)
        sd = float(np.std(r, ddof=1))
        if not sd > 0:
            raise ValueError("returns never change: the Sharpe ratio is undefined")
        return cls(float(np.mean(r)) / sd, float(stats.skew(r)), float(stats.kurtosis(r, fisher=False)), len(r))


def _psr_z(sr: float, benchmark: float, skew: float, kurtosis: float, n: int) -> float:
    var = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var <= 0:
        raise ValueError("moments give a non-positive variance of the Sharpe ratio estimate")
    return (sr - benchmark) * math.sqrt(n - 1) / math.sqrt(var)


def psr_from_moments(m: Moments, benchmark: float = 0.0, periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """PSR: the probability that the true Sharpe ratio exceeds `benchmark` (annualised)."""
    return float(stats.norm.cdf(_psr_z(m.sharpe, benchmark / math.sqrt(periods_per_year), m.skew, m.kurtosis, m.n)))


def probabilistic_sharpe_ratio(returns: Any, benchmark: float = 0.0,
                               periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """PSR of a series of per-period excess returns against an annualised benchmark Sharpe ratio."""
    return psr_from_moments(Moments.of(returns), benchmark, periods_per_year)


def min_track_record_length_from_moments(m: Moments, benchmark: float = 0.0, confidence: float = 0.95,
                                         periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """MinTRL in periods: how long a track record with these moments must be for PSR(benchmark) >= confidence;
    infinite when the Sharpe ratio does not exceed the benchmark."""
    sr, bench = m.sharpe, benchmark / math.sqrt(periods_per_year)
    if sr <= bench:
        return math.inf
    z = float(stats.norm.ppf(confidence))
    var = 1.0 - m.skew * sr + (m.kurtosis - 1.0) / 4.0 * sr * sr
    return 1.0 + var * (z / (sr - bench)) ** 2


def min_track_record_length(returns: Any, benchmark: float = 0.0, confidence: float = 0.95,
                            periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """MinTRL (periods) of a series of per-period excess returns."""
    return min_track_record_length_from_moments(Moments.of(returns), benchmark, confidence, periods_per_year)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """SR0: the expected largest of `n_trials` Sharpe ratios of unskilled strategies whose Sharpe ratios vary
    with `sharpe_variance` (same units as the result; Bailey & López de Prado, 2014)."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if n_trials == 1:
        return 0.0
    if sharpe_variance < 0:
        raise ValueError("sharpe_variance must be >= 0")
    q1 = float(stats.norm.ppf(1 - 1 / n_trials))
    q2 = float(stats.norm.ppf(1 - 1 / (n_trials * math.e)))
    return math.sqrt(sharpe_variance) * ((1 - EULER_GAMMA) * q1 + EULER_GAMMA * q2)


def deflated_sharpe_ratio_from_moments(m: Moments, n_trials: int, sharpe_variance: float,
                                       periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """DSR: the PSR against SR0 of `n_trials` (`sharpe_variance` of the trials' annualised Sharpe ratios)."""
    sr0 = expected_max_sharpe(n_trials, sharpe_variance / periods_per_year)
    return float(stats.norm.cdf(_psr_z(m.sharpe, sr0, m.skew, m.kurtosis, m.n)))


def deflated_sharpe_ratio(returns: Any, n_trials: int, sharpe_variance: float,
                          periods_per_year: int = PERIODS_PER_YEAR) -> float:
    """DSR of the chosen strategy's per-period returns after trying `n_trials` variants whose annualised Sharpe
    ratios had variance `sharpe_variance`."""
    return deflated_sharpe_ratio_from_moments(Moments.of(returns), n_trials, sharpe_variance, periods_per_year)


def sharpe_interval(returns: Any, *, periods_per_year: int = PERIODS_PER_YEAR, block_length: float | None = None,
                    n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                    seed: int = 0) -> Estimate:
    """Annualised Sharpe ratio with a stationary-bootstrap percentile interval (mean block length n^(1/3) unless
    given)."""
    r = _returns(returns)
    block = block_length if block_length is not None else default_block_length(len(r))
    return bootstrap_ci(lambda x: sharpe_ratio(x, periods_per_year), r, n_resamples=n_resamples,
                        confidence=confidence, seed=seed, block_length=block)


MIN_RANK_SESSIONS = 20
"""Below this many aligned sessions no ranking is attempted."""


@dataclass(frozen=True, slots=True)
class RankVerdict:
    """Whether a window ranks two strategies.

    Attributes:
        rankable: the paired interval of the Sharpe difference excludes zero.
        leader: "a" or "b" when rankable, else None.
        sharpe_a: annualised Sharpe ratio of a.
        sharpe_b: annualised Sharpe ratio of b.
        difference: Sharpe(a) - Sharpe(b) with its paired stationary-bootstrap interval.
        sessions: aligned sessions in the window.
        sessions_needed: when not rankable, about how many sessions would make the observed difference
            significant (the interval narrows as 1 / sqrt(n)); None when no difference was observed or when
            rankable.
        message: the verdict in plain words.
    """

    rankable: bool
    leader: Literal["a", "b"] | None
    sharpe_a: float
    sharpe_b: float
    difference: Estimate
    sessions: int
    sessions_needed: int | None
    message: str


def _needed(d: Estimate) -> int | None:
    half = (d.high - d.low) / 2
    if not (math.isfinite(half) and math.isfinite(d.value)) or d.value == 0:
        return None
    return math.ceil(d.n * (half / abs(d.value)) ** 2)


def can_rank(a: Any, b: Any, *, periods_per_year: int = PERIODS_PER_YEAR, block_length: float | None = None,
             n_resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
             min_sessions: int = MIN_RANK_SESSIONS) -> RankVerdict:
    """Say plainly whether aligned per-session returns `a` and `b` are enough to rank the two strategies.

    The Sharpe difference is bootstrapped with the sessions of both resampled together (stationary bootstrap,
    mean block length n^(1/3) unless given); the window ranks them only when the interval excludes zero.
    Percentile intervals are a little narrow on short windows: with two strategies of the same quality over 126
    sessions, about 8% of windows rank them at 95% (4% over 252 sessions or more); ask 0.99 for a decision.
    """
    ra, rb = _returns(a, 1), _returns(b, 1)
    if len(ra) != len(rb):
        raise ValueError(f"a and b must be aligned: {len(ra)} and {len(rb)} sessions")
    n = len(ra)
    sa, sb = sharpe_ratio(ra, periods_per_year), sharpe_ratio(rb, periods_per_year)
    if n < min_sessions:
        nan = Estimate(sa - sb, math.nan, math.nan, confidence, n)
        return RankVerdict(False, None, sa, sb, nan, n, None,
                           f"too short to rank: {n} sessions, fewer than the {min_sessions} needed to try")
    pair = np.column_stack([ra, rb])

    def diff(x: Array) -> float:
        return sharpe_ratio(x[:, 0], periods_per_year) - sharpe_ratio(x[:, 1], periods_per_year)

    d = bootstrap_ci(diff, pair, n_resamples=n_resamples, confidence=confidence, seed=seed,
                     block_length=block_length if block_length is not None else default_block_length(n))
    span = (f"Sharpe a {sa:.2f} vs b {sb:.2f}, difference {d.value:+.2f} [{d.low:+.2f}, {d.high:+.2f}] "
            f"({confidence:.0%})")
    if d.excludes(0.0):
        leader: Literal["a", "b"] = "a" if d.value > 0 else "b"
        return RankVerdict(True, leader, sa, sb, d, n, None, f"{leader} ranks higher over {n} sessions: {span}")
    needed = _needed(d)
    more = (f"; at this difference about {needed} sessions (~{needed / periods_per_year:.1f} years) would be needed"
            if needed is not None else "")
    return RankVerdict(False, None, sa, sb, d, n, needed,
                       f"too short to rank: {n} sessions; {span} includes zero{more}")
