"""Hand-made trap scenarios: setups that tempt a trend or dip buyer and where the right call is not to buy.

Four kinds, six variants each, written as bar-by-bar stories (seeded noise, the same on every machine):

- gap_down_on_news: a steady uptrend, then a session that opens far lower on heavy volume and closes near its
  low; the drift after such news gaps continues down;
- falling_knife: a long slide that accelerates, then a one-day bounce on volume that looks like a bottom;
- illiquid_name: a rising stock that trades a few hundred thousand dollars a day, far below the liquidity
  floor, so the spread and the impact of an order eat any edge;
- earnings_like_gap: a flat base, then a 12-22% gap up on 6-10x volume that fades through the session, as
  earnings gaps often do (and keep fading).

Each trap is shown like an anonymised scenario (ASSET_9nn, "day 0", the snapshot close at 100) and labelled
with the same barriers as the other datasets; the story after the snapshot is part of the trap's definition.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist

from application.evals.hashing import unit
from application.evals.history import FORWARD_DECIMALS
from application.evals.outcomes import label
from application.evals.views import View
from domain.agents.schemas import MarketConditions, SignalContext
from domain.evals.reference import reference_barriers
from domain.evals.rows import ANONYMOUS_DAY, ForwardBars, TrapKind, TrapRow
from domain.features import compute_features
from domain.models.market import BarSeries
from domain.risk.config import RiskSettings

HISTORY = 120
AFTER = 40
VARIANTS = 6
TRAP_SECTORS = ("XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY")
_NORMAL = NormalDist()


@dataclass(frozen=True)
class Leg:
    """A stretch of sessions: how many, the mean daily return, the daily volatility, the volume multiple."""

    sessions: int
    drift: float
    vol: float
    volume: float = 1.0


@dataclass(frozen=True)
class Event:
    """The snapshot session: the opening gap, the close relative to the open, the volume multiple."""

    gap: float
    close_vs_open: float
    volume: float


@dataclass(frozen=True)
class Story:
    """A trap's bars: the legs before the snapshot, the snapshot session, the legs after it."""

    before: tuple[Leg, ...]
    event: Event
    after: tuple[Leg, ...]
    price: float
    shares: float
    description: str


def _normal(seed: str, i: int) -> float:
    return _NORMAL.inv_cdf(min(max(unit(0, seed, i), 1e-9), 1 - 1e-9))


def _legs(seed: str, start: float, legs: tuple[Leg, ...], offset: int) -> list[tuple[float, float, float]]:
    """(close, daily volatility, volume multiple) per session of `legs`."""
    out: list[tuple[float, float, float]] = []
    close = start
    for leg in legs:
        for _ in range(leg.sessions):
            close *= 1 + leg.drift + leg.vol * _normal(seed, offset + len(out))
            out.append((close, leg.vol, leg.volume))
    return out


def _bars(seed: str, story: Story) -> BarSeries:
    before = _legs(seed, story.price, story.before, 0)
    prev = before[-1][0]
    e = story.event
    opened = prev * (1 + e.gap)
    event_close = opened * (1 + e.close_vs_open)
    after = _legs(seed, event_close, story.after, 10_000)
    rows = []
    prev_close = story.price
    for n, (close, vol, volume) in enumerate([*before, (event_close, 0.0, e.volume), *after]):
        open_ = opened if n == len(before) else prev_close * (1 + 0.25 * vol * _normal(seed + "o", n))
        wick = abs(_normal(seed + "w", n)) * max(vol, 0.004) * 0.6
        high = max(open_, close) * (1 + wick)
        low = min(open_, close) * (1 - (wick if n != len(before) else 0.002))
        shares = story.shares * volume * (1 + 0.2 * abs(_normal(seed + "v", n)))
        rows.append((date(2000, 1, 3) + timedelta(days=n), open_, high, low, close, shares))
        prev_close = close
    return BarSeries.from_rows(f"TRAP_{seed}", rows)


def _gap_down(v: int) -> Story:
    gap = -(0.05 + 0.02 * v)
    return Story((Leg(HISTORY - 1, 0.004 - 0.0003 * v, 0.007),), Event(gap, -0.012, 5.0 + v),
                 (Leg(AFTER, -0.005, 0.012, 2.0),), 40.0 + 7 * v, 3e6,
                 f"gapped {-gap:.0%} lower at the open on {5 + v}x volume after a steady uptrend and closed near its "
                 "low: a news gap, and the drift after news gaps continues")


def _falling_knife(v: int) -> Story:
    slide = -(0.006 + 0.0015 * v)
    return Story((Leg(HISTORY - 41, 0.0003, 0.01), Leg(30, slide, 0.018, 1.5), Leg(10, 2 * slide, 0.025, 2.5)),
                 Event(0.004, 0.03 + 0.004 * v, 3.0), (Leg(AFTER, -0.006, 0.018, 2.0),), 60.0 + 9 * v, 4e6,
                 "slid for 40 sessions, faster in the last 10, then bounced on 3x volume: one green day in a "
                 "downtrend is not a bottom")


def _illiquid(v: int) -> Story:
    return Story((Leg(HISTORY - 1, 0.002 + 0.0004 * v, 0.018),), Event(0.01, 0.01, 1.3),
                 (Leg(AFTER, -0.007, 0.02),), 2.5 + 0.35 * v, 40_000 + 25_000 * v,
                 "rising, but it trades a few hundred thousand dollars a day, far below the $5M liquidity floor: the "
                 "spread and the price impact of an order eat the edge")


def _earnings_gap(v: int) -> Story:
    gap = 0.12 + 0.02 * v
    return Story((Leg(HISTORY - 1, 0.0004, 0.01),), Event(gap, -0.02 - 0.003 * v, 6.0 + v),
                 (Leg(AFTER, -0.006, 0.015, 2.0),), 30.0 + 11 * v, 2e6,
                 f"gapped {gap:.0%} higher on {6 + v}x volume, as on earnings, and faded through the session: "
                 "chasing a gap with no news to judge it by, and such gaps often keep fading")


KINDS: dict[TrapKind, Callable[[int], Story]] = {
    "gap_down_on_news": _gap_down, "falling_knife": _falling_knife, "illiquid_name": _illiquid,
    "earnings_like_gap": _earnings_gap,
}


def _market(n: int) -> MarketConditions:
    """Calm uptrends for most traps (where they tempt most), one sideways and one stressed market per kind."""
    regime = n % VARIANTS
    vix, spy, trend = ((13.0 + regime, 0.02 + 0.005 * regime, "up") if regime < 4 else
                       (19.5, 0.002, "sideways") if regime == 4 else (28.5, -0.06, "down"))
    sectors = {s: round(spy + 0.04 * (unit(0, "trap-sector", n, s) - 0.5), 4) for s in TRAP_SECTORS}
    return MarketConditions(vix=vix, vix_is_proxy=False, spy_return_20d=round(spy, 4),
                            spy_above_sma_50=trend != "down", spy_trend=trend,
                            sector_returns_20d=sectors)


def trap_rows(risk: RiskSettings, horizon: int, first_alias: int = 901) -> list[TrapRow]:
    """The 24 trap rows, labelled with the agent's barriers over `horizon` sessions.

    Raises:
        ValueError: `horizon` beyond the stories' `AFTER` sessions.
    """
    if not 1 <= horizon <= AFTER:
        raise ValueError(f"traps are written for a time limit of 1..{AFTER} sessions, got {horizon}")
    rows: list[TrapRow] = []
    for kind, make in KINDS.items():
        for v in range(VARIANTS):
            n = len(rows)
            story = make(v)
            series = _bars(f"{kind}-{v}", story)
            i = sum(leg.sessions for leg in story.before)
            f = compute_features(series.slice(0, i + 1))
            if f is None:
                raise ValueError(f"trap {kind} {v}: no features")
            view = View.anonymised(first_alias + n, f.price, TRAP_SECTORS)
            shown = view.features(f)
            forward = ForwardBars(**{k: tuple(round(float(x) * view.scale, FORWARD_DECIMALS)
                                              for x in getattr(series, k)[i + 1: i + 1 + horizon])
                                     for k in ("open", "high", "low", "close")})
            outcome = label(forward, reference_barriers(shown.atr_pct, risk, horizon))
            context = SignalContext(as_of=ANONYMOUS_DAY, market=view.conditions(_market(n)), symbols=(shown,))
            rows.append(TrapRow(id=f"trap-{n + 1:02d}", kind=kind, description=story.description,
                                context=context, outcome=outcome))
    return rows


def trap_count() -> int:
    """How many traps `trap_rows` makes."""
    return len(KINDS) * VARIANTS


__all__ = ["KINDS", "trap_count", "trap_rows"]
