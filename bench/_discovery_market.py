"""The synthetic 12,000-symbol universe of the discovery scoring benchmark (`bench.discovery_scoring`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from domain.agents.schemas import MemoryEvidence
from domain.discovery.config import DiscoverySettings
from domain.discovery.picker import PickerContext, UniverseSnapshot

N_SYMBOLS = 12_000
N_DAYS = 260
SEED = 20_240_611
SECTORS = (
    "Information Technology", "Health Care", "Financials", "Consumer Discretionary", "Communication Services",
    "Industrials", "Consumer Staples", "Energy", "Utilities", "Real Estate", "Materials",
)  # fmt: skip


@dataclass(frozen=True)
class Market:
    """Synthetic universe as plain arrays (sector_codes: index into SECTORS, -1 unknown)."""

    symbols: tuple[str, ...]
    close: np.ndarray
    volume: np.ndarray
    spread_pct: np.ndarray
    market_caps: np.ndarray
    sector_codes: np.ndarray
    sectors: tuple[str | None, ...]
    benchmark_close: np.ndarray
    context: PickerContext

    def snapshot(self) -> UniverseSnapshot:
        """A fresh snapshot (its cached returns are not shared between runs)."""
        return UniverseSnapshot(
            date(2024, 6, 11), self.symbols, self.close, self.volume, self.spread_pct, self.sectors,
            self.market_caps, self.benchmark_close,
        )  # fmt: skip


def make_market(n: int = N_SYMBOLS, d: int = N_DAYS, seed: int = SEED) -> Market:
    """Seeded synthetic universe: market-model returns, lognormal volumes, gaps, short histories, unknowns."""
    rng = np.random.default_rng(seed)
    market = rng.normal(0.0004, 0.011, d - 1)
    beta = rng.uniform(-0.2, 3.0, n)
    idio = rng.lognormal(np.log(0.016), 0.45, n)
    drift = rng.normal(0.0003, 0.001, n)
    returns = drift[:, None] + beta[:, None] * market[None, :] + idio[:, None] * rng.standard_normal((n, d - 1))
    close = np.empty((n, d))
    close[:, 0] = rng.lognormal(np.log(40.0), 1.0, n)
    close[:, 1:] = close[:, :1] * np.cumprod(1.0 + np.clip(returns, -0.9, None), axis=1)
    volume = rng.lognormal(np.log(600_000.0), 1.3, n)[:, None] * rng.lognormal(0.0, 0.35, (n, d))
    gaps = rng.random((n, d)) < 0.002
    close[gaps] = np.nan
    volume[gaps] = np.nan
    young = rng.random(n) < 0.03
    first_day = rng.integers(1, d - 5, n)
    close[young[:, None] & (np.arange(d)[None, :] < first_day[:, None])] = np.nan
    volume[np.isnan(close)] = np.nan
    spread = rng.lognormal(np.log(0.002), 0.8, n)
    spread[rng.random(n) < 0.03] = np.nan
    caps = rng.lognormal(np.log(3e9), 1.5, n)
    caps[rng.random(n) < 0.05] = np.nan
    codes = rng.integers(0, len(SECTORS), n)
    codes[rng.random(n) < 0.02] = -1
    benchmark = 400.0 * np.cumprod(np.concatenate(([1.0], 1.0 + market)))
    symbols = tuple(f"S{i:05d}" for i in range(n))
    outcomes = ("WIN", "LOSS", "FLAT", None)
    similar = {
        symbols[i]: [
            MemoryEvidence(
                text=f"{symbols[i]} trade {k}",
                distance=float(rng.random()),
                outcome=outcomes[int(rng.integers(0, 4))],
                return_pct=float(rng.normal(0, 0.05)),
            )
            for k in range(int(rng.integers(1, 9)))
        ]
        for i in rng.choice(n, 600, replace=False).tolist()
    }
    context = PickerContext(
        held_sectors={"Information Technology": 0.35, "Financials": 0.2, "Energy": 0.1},
        watchlist_sectors={"Information Technology": 6, "Health Care": 3, "Utilities": 1},
        similar_trades=similar,
        settings=DiscoverySettings(),
    )
    sectors = tuple(None if c < 0 else SECTORS[c] for c in codes.tolist())
    return Market(symbols, close, volume, spread, caps, codes, sectors, benchmark, context)
