"""Valid, varied answers of the agents and the discovery picker, computed from the context a request carries.

What a model would plausibly say: mostly HOLD, some BUYs on uptrends, SELLs of held positions that broke down
or ran far, sizes and stops from the volatility, a validator that approves most candidates, picker scores near
the deterministic prescore; every reason is a sentence or two built from the symbol's own numbers, about as long
as a real model's. Like a model at temperature 0, the answer about a symbol depends on what matters to it, not
on how the prompt is worded: the agent, the symbol, the session day and, for the signal agent, whether the symbol
is held and its day's move in whole percent. So the same question asked again later in the day (or in another
prompt format) gets the same answer until the symbol moves.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from typing import Any

Context = dict[str, Any]
AGENTS = ("signal", "risk", "validator", "picker")
_ROLE_WORDS = (("discovery picker", "picker"), ("signal agent", "signal"), ("risk agent", "risk"),
               ("validator", "validator"))
_SCHEMA_NAMES = {"SignalBatch": "signal", "RiskBatch": "risk", "ValidatorBatch": "validator",
                 "LLMPickerOutput": "picker"}
_SYMBOL = re.compile(r'"symbol"\s*:\s*"([A-Za-z.\-]{1,16})"')
_AS_OF = re.compile(r'"as_of"\s*:\s*"([^"]+)"')

_BUY_WHY = ("momentum is constructive and the trend is intact, so a small entry is justified",
            "the pullback held above support with healthy volume, which favours a long entry",
            "relative strength versus the market is improving while volatility stays moderate",
            "the breakout is confirmed by volume and the market backdrop is supportive")
_SELL_WHY = ("the trend has broken below its averages, so taking the exit protects capital",
             "the move looks extended after a strong run, so locking in the gain is prudent",
             "momentum has faded and similar past trades mostly lost from here")
_HOLD_WHY = ("the signals are mixed and there is no clear edge, so waiting is better",
             "the trend is flat and volatility offers no favourable risk/reward yet",
             "nothing material changed since the last look; no action is warranted",
             "price sits between its averages without a catalyst, so holding off")
_WARNINGS = ("similar past setups had mixed outcomes", "volatility is elevated for the position size",
             "the market trend is not supportive", "volume confirmation is weak")


def rng_for(agent: str, symbol: str, key: str) -> random.Random:
    """A generator seeded by the agent, the symbol and what else identifies the answer (`key`)."""
    digest = hashlib.sha256(f"{agent}|{symbol}|{key}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def agent_of(body: dict[str, Any]) -> str | None:
    """Which agent asked: the role in the system prompt, else the response format's schema name, else the
    shape of the context."""
    messages = body.get("messages") or []
    system = " ".join(_text(m) for m in messages if m.get("role") == "system").lower()
    for words, agent in _ROLE_WORDS:
        if words in system:
            return agent
    fmt = body.get("response_format") or {}
    name = (fmt.get("json_schema") or {}).get("name") if isinstance(fmt, dict) else None
    if name in _SCHEMA_NAMES:
        return _SCHEMA_NAMES[name]
    ctx = context_of(body)
    if "portfolio" in ctx:
        return "picker"
    if "symbols" in ctx:
        return "signal"
    if "equity" in ctx:
        return "risk"
    return "validator" if "candidates" in ctx else None


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content blocks (e.g. with cache_control)
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def context_of(body: dict[str, Any]) -> Context:
    """The agent's context: the first user message that is a JSON object with an `as_of`; else what can be read
    from the text (the `as_of` and the symbols asked about)."""
    users = [_text(m) for m in body.get("messages") or [] if m.get("role") == "user"]
    for text in users:
        try:
            found = json.loads(text)
        except ValueError:
            continue
        if isinstance(found, dict) and "as_of" in found:
            return found
    joined = "\n".join(users)
    as_of = _AS_OF.search(joined)
    symbols = list(dict.fromkeys(_SYMBOL.findall(joined)))
    return {"as_of": as_of.group(1) if as_of else "", "_symbols": symbols}


def _items(ctx: Context, key: str) -> list[dict[str, Any]]:
    items = ctx.get(key)
    if isinstance(items, list):
        return [i for i in items if isinstance(i, dict) and "symbol" in i]
    return [{"symbol": s} for s in ctx.get("_symbols", [])]


def _num(d: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = d.get(key)
    return float(value) if isinstance(value, int | float) else default


def _signal(s: dict[str, Any], as_of: str) -> dict[str, Any]:
    sym = str(s["symbol"])
    held = _num(s, "held_qty") > 0
    rng = rng_for("signal", sym, f"{as_of[:10]}|{held}|{math.floor(_num(s, 'return_1d') * 100)}")
    r20, price, sma50 = _num(s, "return_20d"), _num(s, "price"), _num(s, "sma_50")
    vol_ratio, atr = _num(s, "volume_ratio", 1.0), _num(s, "atr_pct", 0.02)
    facts = (f"{sym} is {r20:+.1%} over 20 days, {'above' if price >= sma50 else 'below'} its 50-day average, "
             f"volume {vol_ratio:.1f}x normal and ATR {atr:.1%} of price")
    if held:
        gain = _num(s, "unrealized_return")
        sell = rng.random() < (0.35 if gain < -0.04 or gain > 0.08 else 0.08)
        action, why = ("SELL", rng.choice(_SELL_WHY)) if sell else ("HOLD", rng.choice(_HOLD_WHY))
        facts += f"; the position is {gain:+.1%}"
    else:
        uptrend = (r20 > 0) + (price >= sma50) + (_num(s, "return_5d") > 0)
        buy = rng.random() < 0.05 + 0.08 * uptrend
        action, why = ("BUY", rng.choice(_BUY_WHY)) if buy else ("HOLD", rng.choice(_HOLD_WHY))
    confidence = rng.uniform(0.55, 0.85) if action != "HOLD" else rng.uniform(0.3, 0.6)
    return {"symbol": sym, "action": action, "confidence": round(confidence, 2), "reasoning": f"{facts}; {why}."}


def _risk(c: dict[str, Any], ctx: Context) -> dict[str, Any]:
    sym = str(c["symbol"])
    rng = rng_for("risk", sym, str(ctx.get("as_of", ""))[:10])
    atr = _num(c, "atr_pct", 0.02)
    cap = _num(ctx, "max_position_pct", 0.1) or 0.1
    size = round(min(cap, rng.uniform(0.4, 1.0) * cap), 3)
    stop = round(min(0.15, max(0.02, atr * rng.uniform(1.5, 2.5))), 3)
    return {"symbol": sym, "position_pct": size, "stop_loss_pct": stop,
            "take_profit_pct": round(stop * rng.uniform(1.8, 3.0), 3),
            "reasoning": f"ATR is {atr:.1%} of price, so a stop {stop:.1%} away sits outside normal noise; "
                         f"{size:.1%} of equity keeps the loss at the stop near {size * stop:.2%} of the account."}


def _verdict(c: dict[str, Any], as_of: str) -> dict[str, Any]:
    sym = str(c["symbol"])
    rng = rng_for("validator", sym, f"{as_of[:10]}|{c.get('action')}")
    warned = bool(c.get("rule_warnings"))
    approve = rng.random() < (0.55 if warned else 0.85)
    warnings = [rng.choice(_WARNINGS)] if warned or rng.random() < 0.3 else []
    cut = 0.0 if approve and not warnings else -round(rng.uniform(0.05, 0.2), 2)
    why = ("the setup is consistent with the evidence and the sizing is sensible" if approve
           else "the evidence from similar setups does not support taking this risk now")
    return {"symbol": sym, "approve": approve, "confidence_adjustment": cut, "warnings": warnings,
            "reasoning": f"{sym} {c.get('action', 'BUY')}: {why}."}


def _pick(c: dict[str, Any], as_of: str) -> dict[str, Any]:
    sym = str(c["symbol"])
    rng = rng_for("picker", sym, as_of[:10])
    score = round(min(1.0, max(0.0, _num(c, "prescore", 0.5) + rng.uniform(-0.2, 0.2))), 2)
    features = c.get("features")
    f: dict[str, Any] = features if isinstance(features, dict) else {}
    mood = "a good fit for the watchlist" if score >= 0.5 else "not worth a slot right now"
    return {"symbol": sym, "score": score,
            "reason": f"{sym} ({c.get('sector') or 'sector unknown'}) is {_num(f, 'return_20d'):+.1%} over 20 days "
                      f"with {_num(f, 'volatility_20d'):.0%} volatility; {mood}."}


def answer(agent: str, ctx: Context) -> dict[str, Any]:
    """A valid answer of `agent` (one of `AGENTS`) to its context."""
    as_of = str(ctx.get("as_of", ""))
    if agent == "signal":
        return {"proposals": [_signal(s, as_of) for s in _items(ctx, "symbols")]}
    if agent == "risk":
        return {"assessments": [_risk(c, ctx) for c in _items(ctx, "candidates")]}
    if agent == "validator":
        return {"verdicts": [_verdict(c, as_of) for c in _items(ctx, "candidates")]}
    if agent == "picker":
        return {"picks": [_pick(c, as_of) for c in _items(ctx, "candidates")]}
    raise ValueError(f"unknown agent {agent!r}")
