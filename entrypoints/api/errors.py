"""Exception handlers: every error body is {"error": "<what went wrong>", "detail": <more or null>}.

Bad input is 400 (Litestar validation, ValueError from the use cases), a missing thing 404,
a refused breaker resume 409, an unavailable dependency 502/503 (broker errors, the queue,
a database that cannot be reached, a refused connection). A 500 is a bug: it is logged with
its traceback and answered without internals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from application.cycle_requests import CycleEnqueueError
from domain.breaker import BreakerNotEligibleError
from domain.errors import BrokerError, BrokerUnavailableError, DatabaseError, RateLimitedError

log = structlog.get_logger(__name__)
_DESCRIPTIONS = {
    400: "Bad input; `error` says what to change",
    401: "Missing or wrong X-API-Key (or a read from a non-loopback client without it)",
    404: "Not found",
    409: "Refused in the current state; `error` gives the reason",
    502: "The broker answered with an error",
    503: "A dependency is unavailable, QUORUM_API_KEY is not set, or the feature is not configured",
}


@dataclass
class ErrorBody:
    """The body of every error response."""

    error: str
    detail: Any = None


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI descriptions of the error responses of a route."""
    return {c: ResponseSpec(data_container=ErrorBody, description=_DESCRIPTIONS.get(c, "Error"),
                            generate_examples=False) for c in codes}


def error_response(status: int, error: str, detail: Any = None,
                   headers: Mapping[str, str] | None = None) -> Response[dict[str, Any]]:
    """A JSON error response."""
    return Response({"error": error, "detail": detail}, status_code=status, headers=dict(headers or {}))


def _validation(_: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    problems = exc.extra if isinstance(exc.extra, list) else []
    parts = [f"{p.get('key')}: {p.get('message')}" if p.get("key") else str(p.get("message"))
             for p in problems if isinstance(p, dict)]
    message = "invalid request: " + ("; ".join(parts) if parts else exc.detail)
    return error_response(400, message, problems or None)


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code >= 500:
        log.warning("api_http_error", status=exc.status_code, error=exc.detail)
    return error_response(exc.status_code, exc.detail, exc.extra, exc.headers)


def _bad_input(_: Request[Any, Any, Any], exc: ValueError) -> Response[dict[str, Any]]:
    return error_response(400, str(exc) or "invalid input")


def _not_eligible(_: Request[Any, Any, Any], exc: BreakerNotEligibleError) -> Response[dict[str, Any]]:
    return error_response(409, str(exc))


def _unavailable(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("api_dependency_unavailable", error=f"{type(exc).__name__}: {exc}")
    return error_response(503, str(exc) or type(exc).__name__)


def _database_down(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.warning("api_database_unavailable", error=type(exc).__name__)
    return error_response(503, f"database unavailable ({type(exc).__name__}); try again")


def _connection(_: Request[Any, Any, Any], exc: OSError) -> Response[dict[str, Any]]:
    log.warning("api_connection_failed", error=f"{type(exc).__name__}: {exc}")
    return error_response(503, f"a dependency is unreachable ({type(exc).__name__}); try again")


def _broker(request: Request[Any, Any, Any], exc: BrokerError) -> Response[dict[str, Any]]:
    if isinstance(exc, BrokerUnavailableError | RateLimitedError):
        return _unavailable(request, exc)
    log.warning("api_broker_error", error=f"{type(exc).__name__}: {exc}")
    return error_response(502, f"broker error: {type(exc).__name__}: {exc}")


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("api_unhandled_error", method=request.method, path=request.url.path,
              error=f"{type(exc).__name__}: {exc}", exc_info=exc)
    return error_response(500, "internal error", None)


Handler = Callable[[Request[Any, Any, Any], Any], Response[Any]]
EXCEPTION_HANDLERS: dict[type[Exception] | int, Handler] = {
    ValidationException: _validation,
    HTTPException: _http,
    ValueError: _bad_input,
    BreakerNotEligibleError: _not_eligible,
    CycleEnqueueError: _unavailable,
    DatabaseError: _unavailable,
    OperationalError: _database_down,
    InterfaceError: _database_down,
    DisconnectionError: _database_down,
    OSError: _connection,
    BrokerError: _broker,
    Exception: _unexpected,
}
