"""The price-table entry of a model in litellm's cost map (part of an eval run's baseline key).

A model's entry is every `*cost*` field litellm's packaged map has for it (per-token input and output prices,
cached-token and batch prices...). The offline policy costs nothing and is "offline"; a model the map does not
know is "unknown". litellm is imported only when a real model is asked about.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

OFFLINE = "offline"
UNKNOWN = "unknown"


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
