"""Reading Alpaca's answers through alpaca-py's pydantic models.

Every response body is validated by the official SDK model of its entity (``alpaca.trading.models``
and ``alpaca.data.models``) before it is mapped to a domain model, so a shape Alpaca's own SDK would
reject never half-reaches Quorum: it becomes one typed error naming what could not be read.

Exact numbers: where the SDK declares a number as ``float`` (activity prices and quantities), the
mapping takes the decimal text of the raw body instead, which the SDK model has just validated.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import InvalidOperation
from typing import Any, TypeVar
from uuid import UUID

import pydantic
from alpaca.trading.enums import OrderStatus as SdkOrderStatus
from alpaca.trading.models import TradeActivity

from domain.errors import QuorumError

T = TypeVar("T")
_MAX_ERRORS = 3


class FillActivity(TradeActivity):
    """A FILL account activity of the Trading API.

    alpaca-py's `TradeActivity` is the Broker API's shape: it requires ``account_id``, which the
    Trading API's GET /v2/account/activities/FILL does not send (nor does Alpaca's documentation example
    of a trade activity, alpaca-docs data/webapi/entities/account-trade-activity-v2.yaml), and
    ``order_status``, which that example lacks. Both are optional here; every other field is the SDK's.
    """

    account_id: UUID | None = None  # type: ignore[assignment]
    order_status: SdkOrderStatus | None = None  # type: ignore[assignment]


def _explain(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:_MAX_ERRORS]:
        where = ".".join(str(p) for p in err.get("loc", ())) or "(body)"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    more = exc.error_count() - _MAX_ERRORS
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def validated(what: str, error: type[QuorumError], model: Callable[..., T], *args: Any, **fields: Any) -> T:
    """``model(*args, **fields)`` (an alpaca-py model), or `error` naming `what` and the SDK's objections."""
    name = getattr(model, "__name__", "model")
    try:
        return model(*args, **fields)
    except pydantic.ValidationError as exc:
        raise error(f"Alpaca returned {what} that alpaca-py's {name} rejects ({_explain(exc)})") from None
    except (TypeError, ValueError, AttributeError) as exc:
        detail = f"{type(exc).__name__}: {exc}"
        raise error(f"Alpaca returned {what} that alpaca-py's {name} cannot read ({detail})") from None


def as_object(body: Any, what: str, error: type[QuorumError]) -> dict[str, Any]:
    """`body` when it is a JSON object, else `error` naming `what`."""
    if not isinstance(body, dict):
        raise error(f"Alpaca returned {type(body).__name__} for {what}, expected an object")
    return body


def as_list(body: Any, what: str, error: type[QuorumError]) -> list[Any]:
    """`body` when it is a JSON array, else `error` naming `what`."""
    if not isinstance(body, list):
        raise error(f"Alpaca returned {type(body).__name__} for {what}, expected a list")
    return body


def parsed(what: str, error: type[QuorumError], parse: Callable[..., T], *args: Any) -> T:
    """`parse(*args)` (a mapping to domain models), or `error` naming `what` when a value is unusable."""
    try:
        return parse(*args)
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
        raise error(f"Alpaca returned {what} Quorum cannot read ({type(exc).__name__}: {exc})") from None
