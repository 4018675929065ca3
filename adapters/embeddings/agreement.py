"""How closely two embedders agree: the cosine between their vectors of a fixed set of texts.

A faster backend of the same model is used only when every text of `REFERENCE_TEXTS` gets a vector within
`MAX_COSINE_GAP` of the torch one (cosine >= 1 - 1e-3). The texts are the kinds Quorum embeds (setups at
recall, trade memories at fills, market conditions, discovery notes) plus the edge cases of tokenisation:
one word, padding next to a long text, a text longer than the model's 256 tokens (truncated), non-ASCII.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from domain.ports.embedder import Embedder

MAX_COSINE_GAP = 1e-3
"""Largest 1 - cosine allowed between a backend's vector and the torch vector of the same text."""

REFERENCE_TEXTS: tuple[str, ...] = (
    "BUY AAPL: uptrend, price 171.43 vs 50-day average 165.02; 20-day return +4.3%, 5-day +1.1%; "
    "volatility 22% annualised, ATR 1.6%; volume 1.3x average",
    "BUY XOM: uptrend, price 88.91 vs 50-day average 86.40; 20-day return +2.9%, 5-day -0.4%; "
    "volatility 31% annualised, ATR 2.2%; volume 0.8x average",
    "BUY NVDA: downtrend, price 412.07 vs 50-day average 430.55; 20-day return -6.8%, 5-day -2.5%; "
    "volatility 54% annualised, ATR 3.9%; volume 2.4x average",
    "Market on 2016-06-24: VIX 25.8 (elevated); SPY downtrend, -3.4% over 20 days, below its 50-day average; "
    "strongest sectors XLU +2.1%, XLP +0.4%; weakest XLF -7.9%, XLE -4.2%.",
    "Market on 2014-03-03: VIX proxy (SPY realised vol) 13.1 (calm); SPY uptrend, +1.8% over 20 days, above its "
    "50-day average.",
    "BUY MSFT at 41.22: uptrend, price 41.22 vs 50-day average 39.80. Reasoning: momentum above the 50-day average "
    "with rising volume; the validator saw no earnings in the next 5 sessions.",
    "SELL TSLA at 212.10. Reasoning: stop reached after a failed breakout.",
    "Discovered KO: consumer staples leader, low volatility, steady dividend, relative strength against XLP.",
    "breakout",
    "x",
    "  leading and trailing spaces  ",
    "Café, naïve résumé — 東京 ünïcödé ✓ 12½%",
    " ".join(f"word{i} and some ordinary English filler to make a long memory text" for i in range(30)),
    "HOLD JPM: price 58.12 vs 50-day average 58.40; nothing to do.",
)


@dataclass(frozen=True, slots=True)
class Agreement:
    """Cosines between the vectors of two embedders on the same texts."""

    texts: int
    min_cosine: float
    mean_cosine: float
    max_abs_diff: float

    @property
    def within_tolerance(self) -> bool:
        """Every text's cosine is at least 1 - `MAX_COSINE_GAP`."""
        return self.min_cosine >= 1.0 - MAX_COSINE_GAP

    def as_dict(self) -> dict[str, float | int | bool]:
        """Plain values, for logs and benchmark results."""
        return {"texts": self.texts, "min_cosine": self.min_cosine, "mean_cosine": self.mean_cosine,
                "max_abs_diff": self.max_abs_diff, "within_tolerance": self.within_tolerance}


def texts_digest(texts: tuple[str, ...] = REFERENCE_TEXTS) -> str:
    """A short digest of `texts`: a stored agreement holds only for the texts it was measured on."""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:16]


def agreement(reference: Embedder, candidate: Embedder, texts: tuple[str, ...] = REFERENCE_TEXTS) -> Agreement:
    """Embed `texts` with both embedders (one batch each) and compare the vectors row by row."""
    a = np.asarray(reference.embed(list(texts)), dtype=np.float64)
    b = np.asarray(candidate.embed(list(texts)), dtype=np.float64)
    return compare(a, b)


def compare(a: np.ndarray, b: np.ndarray) -> Agreement:
    """Row-wise cosines of two (n, d) arrays of vectors of the same texts."""
    if a.shape != b.shape:
        raise ValueError(f"vectors of different shapes: {a.shape} and {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    cos = np.sum(a * b, axis=1) / np.where(norms == 0, 1.0, norms)
    return Agreement(texts=int(a.shape[0]), min_cosine=round(float(cos.min()), 9),
                     mean_cosine=round(float(cos.mean()), 9), max_abs_diff=float(np.abs(a - b).max()))
