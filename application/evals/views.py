"""The two twins of a scenario: anonymised (ASSET_nnn, "day 0", prices scaled to 100) and named (real ticker,
date and prices). Both round the same numbers the same way, so they differ only in what names the asset and
the date: a gap between the agent's answers on the two twins points at memorisation, not at the inputs.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.evals.rows import ANONYMOUS_DAY, Twin
from domain.market_conditions import conditions_text

PRICE_DECIMALS = 2
RETURN_DECIMALS = 4
ANONYMOUS_CLOSE = 100.0


def significant(x: float, digits: int = 2) -> float:
    """`x` rounded to `digits` significant digits (a dollar volume says how liquid, not which stock)."""
    return float(f"{x:.{digits}g}")


def alias(number: int) -> str:
    """The anonymised name of scenario `number`."""
    return f"ASSET_{number:03d}"


@dataclass(frozen=True)
class View:
    """How one twin names and scales a snapshot.

    Attributes:
        twin: "anonymised" or "named".
        symbol: the alias or the real ticker.
        as_of: "day 0" or the real snapshot time (ISO).
        day: the day written in texts: "day 0" or the ISO date.
        scale: multiplies every price (100 / the snapshot close, or 1).
        sectors: the sector ETFs kept in the market conditions (those known over the whole data set, so that
            which sectors exist does not date a scenario).
    """

    twin: Twin
    symbol: str
    as_of: str
    day: str
    scale: float
    sectors: frozenset[str]

    @classmethod
    def anonymised(cls, number: int, close: float, sectors: Collection[str]) -> View:
        """The anonymised twin of scenario `number` whose snapshot closed at `close`."""
        return cls("anonymised", alias(number), ANONYMOUS_DAY, ANONYMOUS_DAY, ANONYMOUS_CLOSE / close,
                   frozenset(sectors))

    @classmethod
    def named(cls, symbol: str, as_of: str, day: str, sectors: Collection[str]) -> View:
        """The named twin."""
        return cls("named", symbol, as_of, day, 1.0, frozenset(sectors))

    def price(self, x: float) -> float:
        """A price on this twin's scale."""
        return round(x * self.scale, PRICE_DECIMALS)

    def features(self, f: SymbolFeatures, symbol: str | None = None) -> SymbolFeatures:
        """`f` renamed, rescaled and rounded."""
        r = RETURN_DECIMALS
        return SymbolFeatures(
            symbol=symbol or self.symbol, price=self.price(f.price), return_1d=round(f.return_1d, r),
            return_5d=round(f.return_5d, r), return_20d=round(f.return_20d, r), return_60d=round(f.return_60d, r),
            sma_20=self.price(f.sma_20), sma_50=self.price(f.sma_50), volatility_20d=round(f.volatility_20d, r),
            atr_pct=round(f.atr_pct, r), avg_dollar_volume_20d=significant(f.avg_dollar_volume_20d),
            volume_ratio=round(f.volume_ratio, 2))

    def conditions(self, c: MarketConditions) -> MarketConditions:
        """`c` with the kept sectors, rounded, its text dated by this twin."""
        r = RETURN_DECIMALS
        out = MarketConditions(
            vix=None if c.vix is None else round(c.vix, 1), vix_is_proxy=c.vix_is_proxy,
            spy_return_20d=round(c.spy_return_20d, r), spy_above_sma_50=c.spy_above_sma_50, spy_trend=c.spy_trend,
            sector_returns_20d={s: round(v, r) for s, v in sorted(c.sector_returns_20d.items()) if s in self.sectors})
        return out.model_copy(update={"text": conditions_text(out, self.day)})
