"""Texts the embedding backends are compared on: what Quorum embeds, plus the edge cases of tokenisation."""

from __future__ import annotations

import numpy as np

LONG = " ".join(f"Paragraph {i}: the position was trimmed into strength after a gap above resistance, then "
                f"the stop was raised under the prior swing low." for i in range(40))
"""Longer than the 256 tokens the model reads: every backend must truncate it the same way."""

TEXTS = [
    "BUY AAPL: uptrend, price 171.43 vs 50-day average 165.02; 20-day return +4.3%, 5-day +1.1%; volatility 22% "
    "annualised, ATR 1.6%; volume 1.3x average",
    "SELL XOM at 88.91. Reasoning: stop reached. Outcome: LOSS -6.20%",
    "Market on 2015-08-24: VIX 40.7 (panic); SPY downtrend, -11.2% over 20 days, below its 50-day average.",
    LONG,
    "a",
    "?",
    "  padded with spaces  ",
    "Ünïcödé: café naïve — 株式市場 📈 ±3½%",
    "Discovered NFLX: streaming leader with accelerating subscriber growth and relative strength vs XLY.",
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two arrays of vectors."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
