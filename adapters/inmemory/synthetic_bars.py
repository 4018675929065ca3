"""A seeded synthetic US equity market: daily OHLCV for N stocks, SPY, VIX and the 11 sector SPDRs.

The model, all in log returns and fully vectorised except for two length-T recursions:
- a calm/stressed volatility regime (Markov switching) sets the market's drift and volatility;
- the market factor has fat tails (Student t, 5 degrees of freedom); VIX mean-reverts to a level set by the
  regime and jumps up when the market falls;
- 11 sector factors load on the market; each stock loads on its sector factor and adds its own noise, with
  an earnings-like overnight gap every 63 sessions and rare extra jumps;
- each day's return is split into an overnight part (open gap) and an intraday part (open to close), and
  high/low extend beyond open and close, so low <= open, close <= high always holds;
- prices are exponentials of log prices (never <= 0), rounded to the cent with a 0.01 floor;
- market cap is log-uniform over 3e8..1.5e12 USD and daily turnover 0.1%..1% of it, so dollar volume
  spreads over several orders of magnitude; volume rises with the size of the move, in stress and on gaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from adapters.inmemory.symbols import BENCHMARK_SYMBOL, SECTOR_ETFS, VOLATILITY_SYMBOL
from domain.models.market import BarSeries
from domain.ports.market_data import FundamentalsRecord

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

SECTORS: tuple[str, ...] = tuple(SECTOR_ETFS.values())
_CALM_TO_STRESSED = 0.015
_STRESSED_TO_CALM = 0.06
_MKT_MU = (0.0005, -0.0012)
_MKT_SIGMA = (0.008, 0.022)
_VIX_TARGET = (14.0, 30.0)
_OVERNIGHT_SHARE = 0.3
_EARNINGS_EVERY = 63


@dataclass(frozen=True)
class SyntheticData:
    """Everything generated: bars, sectors, market caps and the regime of every session."""

    days: tuple[date, ...]
    stocks: tuple[str, ...]
    series: dict[str, BarSeries]
    sectors: dict[str, str]
    market_caps: dict[str, float]
    shares_outstanding: dict[str, float]
    stressed: BoolArray

    def fundamentals_records(self, every: int = 21) -> list[FundamentalsRecord]:
        """Sector and market cap (shares outstanding x close) of every stock, every `every` sessions."""
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        out = []
        for s in self.stocks:
            bars, shares, sector = self.series[s], self.shares_outstanding[s], self.sectors[s]
            for i in range(0, len(self.days), every):
                out.append(FundamentalsRecord(s, sector, float(shares * bars.close[i]), self.days[i]))
        return out


def _regimes(rng: np.random.Generator, t: int) -> BoolArray:
    u = rng.random(t)
    out = np.zeros(t, dtype=bool)
    state = False
    for i in range(t):
        state = u[i] < (1 - _STRESSED_TO_CALM) if state else u[i] < _CALM_TO_STRESSED
        out[i] = state
    return out


def _ohlc(
    rng: np.random.Generator, p0: FloatArray, r_on: FloatArray, r_id: FloatArray, range_sigma: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Prices (rows = instruments) from overnight and intraday log returns, rounded to the cent."""
    log_close = np.log(p0)[:, None] + np.cumsum(r_on + r_id, axis=1)
    log_open = log_close - r_id
    close = np.maximum(np.round(np.exp(log_close), 2), 0.01)
    open_ = np.maximum(np.round(np.exp(log_open), 2), 0.01)
    wick = np.abs(rng.standard_normal((2, *close.shape))) * range_sigma
    high = np.round(np.maximum(open_, close) * np.exp(wick[0]), 2)
    low = np.maximum(np.round(np.minimum(open_, close) * np.exp(-wick[1]), 2), 0.01)
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))
    return open_, high, low, close


def _split(
    rng: np.random.Generator, mu: FloatArray, sigma: FloatArray, shape: tuple[int, int]
) -> tuple[FloatArray, FloatArray]:
    """Overnight and intraday parts of returns with mean `mu` and standard deviation `sigma`."""
    z = rng.standard_normal((2, *shape))
    on = _OVERNIGHT_SHARE * mu + sigma * np.sqrt(_OVERNIGHT_SHARE) * z[0]
    intraday = (1 - _OVERNIGHT_SHARE) * mu + sigma * np.sqrt(1 - _OVERNIGHT_SHARE) * z[1]
    return on, intraday


def _vix(rng: np.random.Generator, stressed: BoolArray, market: FloatArray) -> FloatArray:
    target = np.log(np.where(stressed, _VIX_TARGET[1], _VIX_TARGET[0]))
    noise = 0.05 * rng.standard_normal(len(market))
    level = np.empty(len(market) + 1)
    level[0] = np.log(_VIX_TARGET[0])
    for i in range(len(market)):
        level[i + 1] = level[i] + 0.15 * (target[i] - level[i]) - 4.0 * market[i] + noise[i]
    return np.clip(level, np.log(9.0), np.log(90.0))


def generate_market(seed: int, n_symbols: int, days: list[date]) -> SyntheticData:
    """Generate the market for sessions `days` (see the module docstring for the model).

    Raises:
        ValueError: no sessions, or a negative number of symbols.
    """
    if not days:
        raise ValueError("a synthetic market needs at least one session")
    if n_symbols < 0:
        raise ValueError(f"n_symbols must be >= 0, got {n_symbols}")
    rng = np.random.default_rng(seed)
    t, n, k = len(days), n_symbols, len(SECTORS)
    day_tuple = tuple(days)
    stressed = _regimes(rng, t)
    s_idx = stressed.astype(int)
    mu, sigma = np.array(_MKT_MU)[s_idx], np.array(_MKT_SIGMA)[s_idx]
    fat = rng.standard_t(5, (2, t)) / np.sqrt(5 / 3)
    mkt_on = _OVERNIGHT_SHARE * mu + sigma * np.sqrt(_OVERNIGHT_SHARE) * fat[0]
    mkt_id = (1 - _OVERNIGHT_SHARE) * mu + sigma * np.sqrt(1 - _OVERNIGHT_SHARE) * fat[1]
    stress_mult = np.where(stressed, 1.8, 1.0)

    sec_beta = rng.uniform(0.7, 1.3, k)[:, None]
    sec_on, sec_id = _split(rng, np.zeros((k, t)), 0.005 * stress_mult[None, :], (k, t))
    sec_on += sec_beta * mkt_on
    sec_id += sec_beta * mkt_id

    sector_of = rng.integers(0, k, n)
    beta = np.clip(rng.normal(1.0, 0.25, n), 0.3, 2.0)[:, None]
    idio = rng.uniform(0.006, 0.02, n)[:, None]
    r_on, r_id = _split(rng, np.zeros((n, t)), idio * stress_mult[None, :], (n, t))
    r_on += beta * sec_on[sector_of]
    r_id += beta * sec_id[sector_of]
    earnings = (np.arange(t)[None, :] - rng.integers(0, _EARNINGS_EVERY, n)[:, None]) % _EARNINGS_EVERY == 0
    r_on[earnings] += rng.normal(0.0, 0.06, int(earnings.sum()))
    jumps = rng.integers(0, n * t, rng.binomial(n * t, 0.001)) if n else np.zeros(0, dtype=np.int64)
    r_on.reshape(-1)[jumps] += rng.normal(0.0, 0.08, len(jumps))
    np.clip(r_on, -0.6, 0.6, out=r_on)
    np.clip(r_id, -0.4, 0.4, out=r_id)

    p0 = np.clip(np.exp(rng.normal(np.log(50.0), 0.9, n)), 2.0, 1500.0)
    o, h, lo, c = _ohlc(rng, p0, r_on, r_id, 0.6 * idio * stress_mult[None, :] + 0.002)
    mcap = np.exp(rng.uniform(np.log(3e8), np.log(1.5e12), n))
    turnover = np.exp(rng.uniform(np.log(0.001), np.log(0.01), n))
    shares_out = mcap / p0
    move = np.abs(r_on + r_id) / (idio * stress_mult[None, :])
    activity = np.exp(rng.normal(0.0, 0.35, (n, t))) * (1 + 0.3 * move) * np.where(earnings, 2.5, 1.0)
    volume = np.round(shares_out[:, None] * turnover[:, None] * activity * stress_mult[None, :] ** 0.6)

    stocks = tuple(f"S{i:0{max(4, len(str(n - 1)))}d}" for i in range(n))
    series = {s: BarSeries(s, day_tuple, o[i], h[i], lo[i], c[i], volume[i]) for i, s in enumerate(stocks)}
    sectors = {s: SECTORS[sector_of[i]] for i, s in enumerate(stocks)}

    etf_p0 = np.concatenate([[400.0], rng.uniform(30.0, 150.0, k)])
    etf_on = np.vstack([mkt_on, sec_on])
    etf_id = np.vstack([mkt_id, sec_id])
    eo, eh, el, ec = _ohlc(rng, etf_p0, etf_on, etf_id, np.full((1, t), 0.004) * stress_mult[None, :])
    etf_volume = np.round(
        np.array([8e7, *([1e7] * k)])[:, None] * np.exp(rng.normal(0.0, 0.3, (k + 1, t))) * stress_mult[None, :]
    )
    for j, symbol in enumerate([BENCHMARK_SYMBOL, *SECTOR_ETFS]):
        series[symbol] = BarSeries(symbol, day_tuple, eo[j], eh[j], el[j], ec[j], etf_volume[j])
    sectors.update(SECTOR_ETFS)

    vix_log = _vix(rng, stressed, mkt_on + mkt_id)
    vix_close: FloatArray = np.round(np.exp(vix_log[1:]), 2).astype(np.float64)
    vix_open: FloatArray = np.round(np.exp(vix_log[:-1] + 0.5 * (vix_log[1:] - vix_log[:-1])), 2).astype(np.float64)
    wick = np.abs(rng.standard_normal((2, t))) * 0.03
    vix_high = np.maximum(
        np.round(np.maximum(vix_open, vix_close) * np.exp(wick[0]), 2), np.maximum(vix_open, vix_close)
    )
    vix_low = np.minimum(
        np.round(np.minimum(vix_open, vix_close) * np.exp(-wick[1]), 2), np.minimum(vix_open, vix_close)
    )
    series[VOLATILITY_SYMBOL] = BarSeries(
        VOLATILITY_SYMBOL, day_tuple, vix_open, vix_high, vix_low, vix_close, np.zeros(t)
    )

    return SyntheticData(
        days=day_tuple,
        stocks=stocks,
        series=series,
        sectors=sectors,
        market_caps={s: float(shares_out[i] * c[i, 0]) for i, s in enumerate(stocks)},
        shares_outstanding={s: float(shares_out[i]) for i, s in enumerate(stocks)},
        stressed=stressed,
    )
