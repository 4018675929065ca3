"""The agent's own stop, take-profit, size and entry confidence, used to label the eval datasets.

These mirror the offline policy (`adapters.llm.offline_policy`: the rule agent Quorum runs when no LLM is
configured) and the hard limits that clamp every stop (`domain.risk.sizing.choose_stop_pct`). A unit test
checks that they agree with the offline policy, so a change there shows up here.

- stop: 2.5 x the 14-day ATR as a fraction of the price, kept within 2%..12% (the default stop when the ATR is
  unknown), then clamped into the risk settings' `min_stop_pct..max_stop_pct`;
- take-profit: 3 x the stop;
- size: `min(max_position_pct, 0.10 / volatility x confidence)` (volatility 50% when unknown);
- entry confidence: 0.55 + min(0.25, 2 x 20-day return) + 0.05 when volume is 1.2x its average, at most 0.95.
"""

from __future__ import annotations

import math

from domain.agents.schemas import SymbolFeatures
from domain.evals.barriers import Barriers
from domain.risk.config import RiskSettings

STOP_ATR_MULTIPLE = 2.5
STOP_FLOOR = 0.02
STOP_CAP = 0.12
TAKE_PROFIT_MULTIPLE = 3.0
TIME_LIMIT_SESSIONS = 20
"""Time limit of the labels: about a calendar month of sessions."""
VOLATILITY_BUDGET = 0.10
UNKNOWN_VOLATILITY = 0.5


def reference_stop_pct(atr_pct: float, risk: RiskSettings) -> float:
    """The agent's stop distance for a stock with this ATR (fraction of the price)."""
    if math.isfinite(atr_pct) and atr_pct > 0:
        stop = round(min(STOP_CAP, max(STOP_FLOOR, STOP_ATR_MULTIPLE * atr_pct)), 6)
    else:
        stop = risk.default_stop_pct
    return min(risk.max_stop_pct, max(risk.min_stop_pct, stop))


def reference_barriers(atr_pct: float, risk: RiskSettings, max_sessions: int = TIME_LIMIT_SESSIONS) -> Barriers:
    """The stop, take-profit and time limit that label a scenario."""
    stop = reference_stop_pct(atr_pct, risk)
    return Barriers(stop_pct=stop, take_profit_pct=round(stop * TAKE_PROFIT_MULTIPLE, 6), max_sessions=max_sessions)


def reference_position_pct(volatility_20d: float, confidence: float, risk: RiskSettings) -> float:
    """The agent's position size as a share of equity."""
    vol = volatility_20d if math.isfinite(volatility_20d) and volatility_20d > 0 else UNKNOWN_VOLATILITY
    return round(max(0.0, min(risk.max_position_pct, VOLATILITY_BUDGET / vol * confidence)), 6)


def reference_confidence(f: SymbolFeatures) -> float:
    """The confidence of a trend-and-momentum entry (before any memory of similar trades)."""
    confidence = 0.55 + min(0.25, f.return_20d * 2) + (0.05 if f.volume_ratio > 1.2 else 0.0)
    return round(min(confidence, 0.95), 4)


def describe(risk: RiskSettings, max_sessions: int = TIME_LIMIT_SESSIONS) -> dict[str, object]:
    """The labelling rule in words and numbers (written into the dataset manifest)."""
    return {
        "entry": "open of the session after the snapshot",
        "stop": f"{STOP_ATR_MULTIPLE} x ATR(14) as a fraction of the price, within {STOP_FLOOR:.0%}..{STOP_CAP:.0%} "
                f"(default {risk.default_stop_pct:.0%} without ATR), clamped into the risk limits "
                f"{risk.min_stop_pct:.0%}..{risk.max_stop_pct:.0%}",
        "take_profit": f"{TAKE_PROFIT_MULTIPLE:g} x the stop distance",
        "time_limit_sessions": max_sessions,
        "same_session_touch": "stop first (daily bars cannot order the touches)",
        "gap_through": "filled at the session's open",
        "label": "+1 take-profit, -1 stop, 0 time limit; realised return before costs",
        "source": "the offline policy's risk rule (adapters/llm/offline_policy.py) and the hard stop limits",
    }
