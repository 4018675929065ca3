"""How the agents' and the discovery picker's prompts are written: stable text first, the context last, compact.

A prompt is a system message (the agent's role and how to answer: the same for every call of the agent, so a
provider's prompt cache can serve it) and a user message (the typed context as JSON, different for every call).
`PromptStyle` decides how much of it is sent:

- compact: the output schema is left to the LLM adapter, which sends it once (as the `response_format` when the
  provider takes a JSON schema there, else in the system prompt); numbers are rounded to what a decision needs
  (prices to cents, returns and other fractions to four decimals, i.e. hundredths of a percent); empty and
  unknown fields are left out; the current market's descriptive text (the same numbers in words) is left out;
  `as_of`, which changes at every cycle, comes last.
- compact_evidence: past items without a known outcome are left out, a trade's reasoning is cut to
  `reasoning_chars` characters, and the validator, which sees candidates whose evidence the signal agent
  already read in full, gets counts of their outcomes instead of the items (and no similar market conditions).
  The discovery picker, whose twenty-odd candidates often recall the same few past trades, gets each informative
  past trade once (outcome known, within `evidence_max_distance`, one copy of a trade stored or recalled twice) in
  a top-level `similar_trades` list, and each candidate the ids and distances of its own; its similar market
  conditions follow the same rules.

The typed context is never changed: the offline policy and the evals read it, not the text.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from domain.agents.schemas import MemoryEvidence
from domain.evidence import CLOSE_DISTANCE, event_key, informative, summary, trim_reasoning

ANSWER_LINE = "Answer with one JSON object and nothing else."
LEGACY_SCHEMA_LINE = "Answer with one JSON object and nothing else, matching this JSON schema:"
_CENTS = frozenset({"price", "sma_20", "sma_50", "equity", "cash"})
_THREE_SIGNIFICANT = frozenset({"avg_dollar_volume_20d", "market_cap"})
_DECIMALS = {"vix": 1, "volume_ratio": 2, "distance": 3, "nearest_distance": 3, "confidence": 3,
             "confidence_adjustment": 3, "held_qty": 4}
_FRACTIONS = frozenset({"volatility_20d", "weight", "sector_weights", "prescore", "score"})
_EVIDENCE_KEYS = ("similar_trades", "similar_conditions")


@dataclass(frozen=True)
class PromptStyle:
    """How prompts are written (see the module docstring).

    Attributes:
        compact: schema sent once by the adapter, rounded numbers, no empty fields, stable text first.
        compact_evidence: only past items with a known outcome, reasoning trimmed, a summary for the validator.
        reasoning_chars: the most characters of a past trade's reasoning shown.
        evidence_max_distance: past items farther than this are not shown to the picker (compact evidence).
    """

    compact: bool = True
    compact_evidence: bool = True
    reasoning_chars: int = 200
    evidence_max_distance: float = CLOSE_DISTANCE


COMPACT_STYLE = PromptStyle()
"""The default: every saving on."""
LEGACY_STYLE = PromptStyle(compact=False, compact_evidence=False)
"""The prompts as they were before they were made compact (a benchmark's baseline)."""


def system_prompt(role: str, schema: type[BaseModel], style: PromptStyle) -> str:
    """The role and how to answer; compact, without the schema (the adapter sends it once)."""
    if style.compact:
        return f"{role}\n{ANSWER_LINE}"
    return f"{role}\n{LEGACY_SCHEMA_LINE}\n{json.dumps(schema.model_json_schema(), sort_keys=True)}"


def user_content(context: BaseModel, style: PromptStyle, *, agent: str) -> str:
    """The context as JSON, written as `style` says (`agent` "validator" gets evidence summaries)."""
    if not (style.compact or style.compact_evidence):
        return context.model_dump_json()
    data: dict[str, Any] = context.model_dump(mode="json")
    if style.compact_evidence:
        data = _with_evidence(data, style.reasoning_chars, summarise=agent == "validator")
        if agent == "picker":
            data = _shared_evidence(data, style.evidence_max_distance)
    if style.compact:
        data = _compact(data)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _with_evidence(value: Any, reasoning_chars: int, *, summarise: bool) -> Any:
    if isinstance(value, list):
        return [_with_evidence(v, reasoning_chars, summarise=summarise) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in _EVIDENCE_KEYS and isinstance(item, list):
            known = [e for e in item if e.get("outcome") is not None]
            if summarise and key == "similar_trades":
                out["similar_trades_summary"] = summary([MemoryEvidence.model_validate(e) for e in known])
            elif not summarise:
                out[key] = [{**e, "text": trim_reasoning(str(e.get("text", "")), reasoning_chars)} for e in known]
            continue
        out[key] = _with_evidence(item, reasoning_chars, summarise=summarise)
    return out


def _shared_evidence(data: dict[str, Any], max_distance: float) -> dict[str, Any]:
    trades: list[dict[str, Any]] = []
    ids: dict[tuple[str, Any, Any], int] = {}
    candidates = []
    for candidate in data.get("candidates") or []:
        features = candidate.get("features") or {}
        refs = []
        for item in informative(features.get("similar_trades") or [], max_distance):
            key = event_key(item)
            if key not in ids:
                ids[key] = len(trades)
                trades.append({"id": ids[key], **{k: v for k, v in item.items() if k != "distance"}})
            refs.append({"id": ids[key], "distance": item["distance"]})
        candidates.append({**candidate, "features": {**features, "similar_trades": refs}})
    out = {k: v for k, v in data.items() if k != "candidates"}
    market = out.get("market")
    if isinstance(market, dict) and market.get("similar_conditions"):
        out["market"] = {**market, "similar_conditions": informative(market["similar_conditions"], max_distance)}
    return {**out, "similar_trades": trades, "candidates": candidates}


def _compact(data: dict[str, Any]) -> dict[str, Any]:
    market = data.get("market")
    if isinstance(market, dict):
        data = {**data, "market": {k: v for k, v in market.items() if k != "text"}}
    ordered = {k: v for k, v in data.items() if k != "as_of"}
    if "as_of" in data:
        ordered["as_of"] = data["as_of"]
    rounded: dict[str, Any] = _rounded(ordered, "")
    return rounded


def _rounded(value: Any, key: str) -> Any:
    """`value` with its floats rounded by the name of the field they are in, and empty fields left out."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            field = k if k.isidentifier() and k.islower() else key  # the keys of a sector map are tickers
            rounded = _rounded(v, field)
            if rounded is not None and rounded != [] and rounded != {}:
                out[k] = rounded
        return out
    if isinstance(value, list):
        return [_rounded(v, key) for v in value]
    if isinstance(value, float):
        return round_number(key, value)
    return value


def round_number(field: str, value: float) -> float | int:
    """`value` of `field` rounded to what a decision needs (an integral result as an int)."""
    if not math.isfinite(value):
        return value
    if field in _CENTS:
        out = round(value, 2)
    elif field in _THREE_SIGNIFICANT:
        out = float(f"{value:.3g}")
    elif field in _DECIMALS:
        out = round(value, _DECIMALS[field])
    elif "return" in field or field.endswith("_pct") or field in _FRACTIONS:
        out = round(value, 4)
    else:
        out = float(f"{value:.4g}")
    out += 0.0  # no "-0.0"
    return int(out) if out.is_integer() and abs(out) < 1e15 else out
