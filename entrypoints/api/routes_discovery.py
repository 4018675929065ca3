"""Discovery endpoints; they answer 503 "discovery not configured" when there is no discovery service."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.exceptions import ServiceUnavailableException

from application.cycle_requests import normalize_symbol
from application.queries import Page
from domain.ports.discovery_api import DiscoveryApi
from entrypoints.api.common import READ_SECURITY, WRITE_SECURITY, Limit, Offset
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices
from entrypoints.api.shapes import (
    discovery_performance_json,
    discovery_run_json,
    discovery_status_json,
    page_json,
    suggestion_json,
    watchlist_edit_json,
)


class WatchlistChange(msgspec.Struct, forbid_unknown_fields=True):
    """The symbol to add to or remove from the watchlist."""

    symbol: Annotated[str, msgspec.Meta(min_length=1, max_length=20, examples=["TSLA"])]


def _discovery(services: ApiServices) -> DiscoveryApi:
    if services.discovery is None:
        raise ServiceUnavailableException(detail="discovery not configured")
    return services.discovery


@get("/discovery/status", security=READ_SECURITY, tags=["discovery"], responses=error_responses(401, 503),
     summary="Discovery status")
async def discovery_status(services: ApiServices) -> dict[str, Any]:
    """Last and next run, watchlist size, whether a run is in progress."""
    return discovery_status_json(await _discovery(services).status())


@post("/discovery/run", status_code=202, security=WRITE_SECURITY, tags=["discovery"],
      responses=error_responses(401, 503), summary="Start a discovery run")
async def discovery_run(services: ApiServices) -> dict[str, Any]:
    """Start (or queue) a discovery run."""
    return discovery_run_json(await _discovery(services).run())


@get("/discovery/suggestions", security=READ_SECURITY, tags=["discovery"], responses=error_responses(400, 401, 503),
     summary="Current suggestions")
async def discovery_suggestions(services: ApiServices, limit: Limit = 50, offset: Offset = 0) -> dict[str, Any]:
    """Suggested symbols, best first, paged."""
    items = await _discovery(services).suggestions()
    return page_json(Page(items[offset:offset + limit], len(items), limit, offset), suggestion_json)


@get("/discovery/performance", security=READ_SECURITY, tags=["discovery"], responses=error_responses(401, 503),
     summary="Discovery performance")
async def discovery_performance(services: ApiServices) -> dict[str, Any]:
    """How past suggestions and each picker performed."""
    return discovery_performance_json(await _discovery(services).performance())


@post("/discovery/watchlist/add", status_code=200, security=WRITE_SECURITY, tags=["discovery"],
      responses=error_responses(400, 401, 503), summary="Add a symbol to the watchlist")
async def watchlist_add(services: ApiServices, data: WatchlistChange) -> dict[str, Any]:
    """Add a symbol (upper-cased; 1-10 letters or dots) to the watchlist."""
    discovery = _discovery(services)
    return watchlist_edit_json(await discovery.watchlist_add(normalize_symbol(data.symbol)))


@post("/discovery/watchlist/remove", status_code=200, security=WRITE_SECURITY, tags=["discovery"],
      responses=error_responses(400, 401, 503), summary="Remove a symbol from the watchlist")
async def watchlist_remove(services: ApiServices, data: WatchlistChange) -> dict[str, Any]:
    """Remove a symbol from the watchlist."""
    discovery = _discovery(services)
    return watchlist_edit_json(await discovery.watchlist_remove(normalize_symbol(data.symbol)))


ROUTES = [discovery_status, discovery_run, discovery_suggestions, discovery_performance, watchlist_add,
          watchlist_remove]
