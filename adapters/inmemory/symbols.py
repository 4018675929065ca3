"""Symbols Quorum recognises by name: the benchmark, the volatility index and the sector SPDRs."""

from __future__ import annotations

from collections.abc import Mapping

BENCHMARK_SYMBOL = "SPY"
VOLATILITY_SYMBOL = "VIX"
SECTOR_ETFS: Mapping[str, str] = {
    "XLB": "Materials",
    "XLC": "Communication Services",
    "XLE": "Energy",
    "XLF": "Financials",
    "XLI": "Industrials",
    "XLK": "Information Technology",
    "XLP": "Consumer Staples",
    "XLRE": "Real Estate",
    "XLU": "Utilities",
    "XLV": "Health Care",
    "XLY": "Consumer Discretionary",
}
BENCHMARK_SYMBOLS: tuple[str, ...] = (BENCHMARK_SYMBOL, VOLATILITY_SYMBOL)
CONTEXT_SYMBOLS: frozenset[str] = frozenset({*BENCHMARK_SYMBOLS, *SECTOR_ETFS})
INDEX_SYMBOLS: frozenset[str] = frozenset({"VIX", "VVIX", "VXN", "SPX", "GSPC", "NDX", "DJI", "RUT"})
ETF_SYMBOLS: frozenset[str] = frozenset({"SPY", "IWM", "QQQ", "DIA", *SECTOR_ETFS})
