"""Model prices: the price-table entry of a model in litellm's cost map (part of an eval run's baseline key),
the per-token prices calls are charged at, and the start-up check that every paid model has a price.

A model's entry is every `*cost*` field litellm's packaged map has for it (per-token input and output prices,
cached-token and batch prices...). The offline policy costs nothing and is "offline"; a model the map does not
know is "unknown". A configured price (USD per million input and output tokens) wins over the map. Models served
by a local runtime (ollama, vLLM, LM Studio, llamafile) cost nothing. litellm is imported only when a real model
is asked about.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from domain.errors import ConfigurationError

OFFLINE = "offline"
UNKNOWN = "unknown"
LOCAL_PROVIDERS = frozenset({"ollama", "ollama_chat", "hosted_vllm", "lm_studio", "llamafile"})
"""Providers whose models run on the user's own machine: free, no price needed."""
PER_MILLION = 1_000_000


def price_entry(model: str) -> dict[str, Any] | str:
    """The cost fields of `model` in litellm's map, "offline" for the policy, "unknown" when not mapped."""
    if model == OFFLINE:
        return OFFLINE
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    try:
        info = litellm.get_model_info(model)
    except Exception:  # noqa: BLE001 - litellm raises several types for a model it cannot price
        return UNKNOWN
    return {k: v for k, v in sorted(info.items()) if "cost" in k and v is not None}


def price_entries(models: Iterable[str]) -> dict[str, dict[str, Any] | str]:
    """model -> `price_entry(model)` for each distinct model."""
    return {m: price_entry(m) for m in sorted(set(models))}


def is_local(model: str) -> bool:
    """Whether `model` runs on a local runtime (see `LOCAL_PROVIDERS`), so costs nothing."""
    return model.split("/", 1)[0] in LOCAL_PROVIDERS


def token_prices(model: str, configured: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """USD per input token and per output token of `model`: its configured price (given per million tokens) first,
    else litellm's map (an entry of 0 and 0 does not count: the map lists some paid models so); (0, 0) for a local
    model; None when neither prices it."""
    if configured and model in configured:
        per_in, per_out = configured[model]
        return per_in / PER_MILLION, per_out / PER_MILLION
    entry = price_entry(model)
    if isinstance(entry, dict):
        mapped_in, mapped_out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
        if isinstance(mapped_in, int | float) and isinstance(mapped_out, int | float) and (mapped_in or mapped_out):
            return float(mapped_in), float(mapped_out)  # a paid provider's model mapped at 0 and 0 is not priced
    return (0.0, 0.0) if is_local(model) else None


def require_prices(models: Iterable[str], configured: Mapping[str, tuple[float, float]], *, setting: str,
                   prices_setting: str = "QUORUM_LLM__PRICES") -> None:
    """Refuse a paid model that neither litellm's map nor the configured prices price (its spend could not be
    counted against the daily cap).

    Raises:
        ConfigurationError: naming the model, `setting` (where it is configured) and `prices_setting`.
    """
    unpriced = sorted({m for m in models if m != OFFLINE and token_prices(m, configured) is None})
    if unpriced:
        example = json.dumps({unpriced[0]: {"input_per_million": 0.15, "output_per_million": 0.6}})
        raise ConfigurationError(
            f"{setting}: no price known for {', '.join(unpriced)} (not in litellm's cost map), so its spend could "
            f"not be held to the daily cap; set its price per million tokens in {prices_setting}, e.g. "
            f"{prices_setting}='{example}' (0 and 0 for a free model)")
