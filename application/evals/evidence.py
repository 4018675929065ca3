"""Similar past trades for the validator datasets, known before the snapshot.

A pool of trend-following entries is drawn from the history (the trending setups among a fixed number of
seeded draws, so whether a past setup is in the pool depends on nothing after it), each labelled with the
agent's own barriers. A candidate at session d is shown the pool trades closest to its setup among those
that were CLOSED before d (their outcome was known at the snapshot), as the trading memory would recall
them. "Closest" is the cosine distance between standardised feature vectors (0 the same setup, 2 the
opposite), on fixed scales so that no statistic of later data leaks in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from application.evals.hashing import pick
from application.evals.history import History
from application.evals.outcomes import label, outcome_word
from application.evals.snapshot import FEATURE_LOOKBACK
from domain.agents.schemas import MemoryEvidence, SymbolFeatures
from domain.evals.reference import reference_barriers
from domain.features import compute_features, setup_text
from domain.risk.config import RiskSettings

# (centre, scale) of each feature in the similarity vector
_SCALES = (
    ("return_5d", 0.0, 0.05), ("return_20d", 0.0, 0.10), ("return_60d", 0.0, 0.20),
    ("volatility_20d", 0.25, 0.15), ("atr_pct", 0.015, 0.01),
)
_BARRIER_WORDS = {"stop": "stopped out", "take_profit": "took profit", "time": "time limit"}


def setup_vector(f: SymbolFeatures) -> np.ndarray:
    """The standardised vector of a setup (returns, volatility, ATR, distance to the averages, volume)."""
    values = [(getattr(f, name) - centre) / scale for name, centre, scale in _SCALES]
    values.append((f.price / f.sma_20 - 1.0) / 0.03 if f.sma_20 > 0 else 0.0)
    values.append((f.price / f.sma_50 - 1.0) / 0.06 if f.sma_50 > 0 else 0.0)
    values.append(math.log(f.volume_ratio) / 0.4 if f.volume_ratio > 0 else 0.0)
    return np.array(values, dtype=np.float64)


@dataclass(frozen=True)
class PastTrade:
    """A labelled past entry of the pool.

    Attributes:
        symbol: the real ticker.
        day: its snapshot session.
        exit_day: the session its trade closed (its outcome is known from then on).
        features: its features at the snapshot.
        realised_return: the trade's return.
        barrier: the barrier that closed it.
        exit_session: sessions from its entry to its exit.
    """

    symbol: str
    day: date
    exit_day: date
    features: SymbolFeatures
    realised_return: float
    barrier: str
    exit_session: int


@dataclass(frozen=True)
class Match:
    """A past trade shown as evidence, with its distance to the candidate."""

    trade: PastTrade
    distance: float


def _past_trade(history: History, symbol: str, day: date, horizon: int, risk: RiskSettings) -> PastTrade | None:
    i = history.scenario_index(symbol, day, horizon)
    if i is None:
        return None
    series = history.bars[symbol]
    f = compute_features(series.slice(max(0, i + 1 - FEATURE_LOOKBACK), i + 1))
    if f is None or not (f.price > f.sma_50 and f.return_20d > 0):
        return None
    out = label(history.forward(symbol, i, horizon), reference_barriers(round(f.atr_pct, 4), risk, horizon))
    exit_day = series.days[i + out.exit_session]
    return PastTrade(symbol, day, exit_day, f, out.realised_return, out.barrier, out.exit_session)


class EvidencePool:
    """The seeded pool of past trend-following entries and the nearest-setup search over it.

    Args:
        history: the build's history.
        seed: the build's seed.
        draws: how many (symbol, session) pairs to draw; the trending ones that can be labelled form the pool.
        horizon: the time limit of their labels.
        risk: the risk settings of the reference barriers.
    """

    def __init__(self, history: History, *, seed: int, draws: int, horizon: int, risk: RiskSettings) -> None:
        symbols, sessions = history.symbols, history.sessions
        trades: list[PastTrade] = []
        seen: set[tuple[str, date]] = set()
        for k in range(draws):
            key = (symbols[pick(seed, len(symbols), "pool", k, "symbol")],
                   sessions[pick(seed, len(sessions), "pool", k, "day")])
            if key in seen:
                continue
            seen.add(key)
            trade = _past_trade(history, key[0], key[1], horizon, risk)
            if trade is not None:
                trades.append(trade)
        self.trades = tuple(trades)
        self._vectors = np.array([setup_vector(t.features) for t in trades]).reshape(len(trades), -1)
        self._norms = np.linalg.norm(self._vectors, axis=1) if trades else np.zeros(0)
        self._exits = np.array([t.exit_day.toordinal() for t in trades], dtype=np.int64)

    def nearest(self, f: SymbolFeatures, day: date, k: int) -> tuple[Match, ...]:
        """The `k` past trades closest to `f` among those closed before `day` (closest first, ties by pool order)."""
        known = self._exits < day.toordinal()
        if not known.any():
            return ()
        v = setup_vector(f)
        denom = self._norms * (float(np.linalg.norm(v)) or 1.0)
        sims = np.divide(self._vectors @ v, denom, out=np.zeros(len(self.trades)), where=denom > 0)
        dist = np.where(known, 1.0 - sims, np.inf)
        order = np.argsort(dist, kind="stable")[:k]
        return tuple(Match(self.trades[j], float(dist[j])) for j in order if np.isfinite(dist[j]))


def evidence_text(m: Match, shown: SymbolFeatures, when: str) -> str:
    """How a past trade reads to the validator: its setup (`shown`: its features as the twin names and scales
    them), when, and how it ended."""
    t = m.trade
    setup = setup_text(shown)
    return (f"{setup} ({when}). Outcome: {outcome_word(t.realised_return)} {t.realised_return:+.1%} after "
            f"{t.exit_session} sessions ({_BARRIER_WORDS[t.barrier]})")


def as_evidence(m: Match, text: str) -> MemoryEvidence:
    """The memory item the validator sees."""
    t = m.trade
    return MemoryEvidence(text=text, distance=round(m.distance, 4), outcome=outcome_word(t.realised_return),
                          return_pct=round(t.realised_return, 4))
