"""GET /api/portfolio, /api/trades, /api/events and /api/performance."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import get
from litestar.params import Parameter

from application.performance_report import performance_report
from domain.events import EventType, Severity
from domain.ports.repositories import EventQuery
from entrypoints.api.common import (
    READ_SECURITY,
    CycleIdFilter,
    FilterSymbol,
    Limit,
    Offset,
    Since,
    Until,
    as_utc,
    check_range,
)
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices
from entrypoints.api.shapes import event_json, fill_json, page_json, performance_report_json, portfolio_json


@get("/portfolio", security=READ_SECURITY, tags=["portfolio"], responses=error_responses(401, 502, 503),
     summary="Cash, equity and positions")
async def portfolio(services: ApiServices) -> dict[str, Any]:
    """Cash, equity and buying power from the broker; positions valued at the latest quotes, with their stops."""
    now = services.clock.now()
    return portfolio_json(await services.read_models.portfolio(now), await services.currency.at(now))


@get("/trades", security=READ_SECURITY, tags=["portfolio"], responses=error_responses(400, 401),
     summary="Fills, newest first")
async def trades(services: ApiServices, limit: Limit = 50, offset: Offset = 0, since: Since = None,
                 until: Until = None, symbol: FilterSymbol = None,
                 include_shadow: Annotated[bool, Parameter(description="also the shadow book's fills")] = False,
                 ) -> dict[str, Any]:
    """Executions of the account, newest first, paged."""
    start, end = as_utc(since, "since"), as_utc(until, "until")
    check_range(start, end)
    found = await services.read_models.trades(limit=limit, offset=offset, since=start, until=end,
                                              symbol=None if symbol is None else symbol.upper(),
                                              include_shadow=include_shadow)
    return page_json(found, fill_json)


@get("/events", security=READ_SECURITY, tags=["portfolio"], responses=error_responses(400, 401),
     summary="The event log, newest first")
async def events(services: ApiServices, limit: Limit = 50, offset: Offset = 0, since: Since = None,
                 until: Until = None, symbol: FilterSymbol = None,
                 types: Annotated[list[EventType] | None, Parameter(query="type", description="event types "
                                                                    "(repeat for several)")] = None,
                 cycle_id: CycleIdFilter = None,
                 min_severity: Annotated[Severity | None, Parameter(description="debug, info, warning, critical")]
                 = None) -> dict[str, Any]:
    """Events filtered by type, symbol, cycle, severity and time, newest first, paged."""
    start, end = as_utc(since, "since"), as_utc(until, "until")
    check_range(start, end)
    sym = None if symbol is None else symbol.upper()
    q = EventQuery(services.scope, types=tuple(types or ()), symbol=sym, cycle_id=cycle_id, min_severity=min_severity,
                   since=start, until=end, limit=limit, offset=offset)
    return page_json(await services.read_models.events(q), event_json)


@get("/performance", security=READ_SECURITY, tags=["portfolio"], responses=error_responses(400, 401),
     summary="Performance over a window")
async def performance(services: ApiServices,
                      window: Annotated[Literal["today", "week", "month", "all"],
                                        Parameter(description="today, week (5 sessions), month (21) or all")] = "all",
                      ) -> dict[str, Any]:
    """Time-weighted return, Sharpe, Sortino, drawdown, win rate, alpha and beta against SPY and more over the window
    (null: not enough data)."""
    now = services.clock.now()
    report = await performance_report(services.uow_factory, services.scope, services.calendar, window=window,
                                      as_of=now, market=services.market)
    return performance_report_json(report, await services.currency.at(now))


ROUTES = [portfolio, trades, events, performance]
