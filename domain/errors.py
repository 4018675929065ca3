"""Typed errors shared by every layer.

Adapters translate library and transport failures into these so that the
application layer can react to *what* went wrong without knowing *where*.
"""

from __future__ import annotations

from decimal import Decimal


class QuorumError(Exception):
    """Base class of every error Quorum raises on purpose."""


class ConfigurationError(QuorumError):
    """A setting is missing or wrong; the message names the setting."""


class EmbeddingError(QuorumError):
    """Text could not be embedded, or a vector has the wrong shape."""


class EmptyTextError(EmbeddingError):
    """An empty or whitespace-only text was given to embed or store."""


class EmbeddingModelMismatchError(ConfigurationError):
    """Stored vectors were made by another embedding model than the configured one (`quorum memory reembed`)."""


class DimensionMismatchError(EmbeddingError):
    """A vector's dimension differs from the dimension the store expects."""

    def __init__(self, expected: int, got: int, *, what: str = "embedding") -> None:
        super().__init__(f"{what} has dimension {got}, expected {expected}")
        self.expected = expected
        self.got = got


class UnsafeQueryError(QuorumError, ValueError):
    """A query written for the chat's SQL executor was refused by a guard; the message names what."""


class QueryFailedError(QuorumError):
    """A chat query passed the parser guard but the database refused or cancelled it (timeout, permission,
    unknown column); the message says which."""


class ActionConfirmationError(QuorumError):
    """A chat control action was confirmed with an id that is unknown, expired, already used or not the one
    sent."""


class DatabaseError(QuorumError):
    """The database is unreachable or not at the expected schema."""


class BrokerError(QuorumError):
    """Base of every error coming back from a broker."""

    retryable: bool = False


class BrokerAuthError(BrokerError):
    """The broker refused the credentials (HTTP 401)."""


class InsufficientBuyingPowerError(BrokerError):
    """The broker refused an order for lack of buying power (HTTP 403)."""


class ForbiddenError(BrokerError):
    """The broker refused the request for a reason other than buying power (HTTP 403)."""


class OrderRejectedError(BrokerError):
    """The broker rejected an order as invalid (HTTP 422)."""


class InsufficientQtyError(ForbiddenError):
    """A sell asked for more shares than are available: some are held by open orders (HTTP 403).

    Attributes:
        symbol: the symbol of the refused sell.
        available: shares that could still be sold.
        held_for_orders: shares reserved by open sell orders (protective legs included).
        related_orders: broker order ids of the orders holding the shares.
    """

    def __init__(self, message: str, *, symbol: str = "", available: Decimal | None = None,
                 held_for_orders: Decimal | None = None, related_orders: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.symbol = symbol
        self.available = available
        self.held_for_orders = held_for_orders
        self.related_orders = related_orders


class WashTradeError(OrderRejectedError):
    """The order is on the opposite side of an open order in the same symbol (a potential wash trade)."""


class PatternDayTraderError(ForbiddenError):
    """The order could be a day trade that would get the account flagged as a pattern day trader."""


class NotFoundError(BrokerError):
    """The broker has no such order, position or asset (HTTP 404)."""


class RateLimitedError(BrokerError):
    """The broker asked us to slow down (HTTP 429)."""

    retryable = True


class BrokerUnavailableError(BrokerError):
    """The broker failed on its side (HTTP 5xx) or did not answer in time."""

    retryable = True


class LiveTradingRefusedError(ConfigurationError):
    """Live trading was requested without the explicit acknowledgement."""


class LLMError(QuorumError):
    """An LLM call failed after its retries, or its output was unusable."""


class LLMBudgetExceededError(LLMError):
    """The daily LLM spending cap has been reached."""


class DataError(QuorumError):
    """Market or reference data is missing or malformed."""


class AlertDeliveryError(QuorumError):
    """An alert channel could not deliver an alert.

    Attributes:
        retryable: whether trying again later may succeed (rate limit, server error, timeout).
        retry_after: seconds the channel asked us to wait before the next try, when it said so.
    """

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class CycleTriggerError(QuorumError):
    """A request to run an event-driven trading cycle failed.

    Attributes:
        retryable: whether trying again may succeed (rate limit, server error, connection failure).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
