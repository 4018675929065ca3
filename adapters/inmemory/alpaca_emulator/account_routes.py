"""Account, activities, assets, clock and calendar on the trading API."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from adapters.inmemory.alpaca_emulator.state import (
    EmulatorState,
    Query,
    Reply,
    integer,
    not_found,
    ok,
    param,
    refused,
    timestamp,
)
from adapters.inmemory.alpaca_emulator.wire import account_json, activity_json, asset_json, calendar_json, clock_json
from adapters.inmemory.exchange import Activity, CashActivity, FillActivity
from adapters.inmemory.exchange.ledger import activity_time
from adapters.inmemory.exchange.rejections import CODE_REQUEST, Rejection, invalid

ACTIVITIES = "/v2/account/activities"


def handle(state: EmulatorState, method: str, path: str, query: Query, body: Any) -> Reply | None:
    """The answer to an account, activity, asset, clock or calendar request, or None."""
    if method != "GET":
        return None
    try:
        return _route(state, path, query)
    except Rejection as rejection:
        return refused(rejection)


def _route(state: EmulatorState, path: str, query: Query) -> Reply | None:
    if path == "/v2/account":
        return ok(account_json(state.exchange.account(), created_at=state.created_at,
                               pdt_fields=state.exchange.rules.pdt_protection))
    if path == ACTIVITIES:
        types = {t.strip().upper() for t in (param(query, "activity_types") or "").split(",") if t.strip()}
        return activities(state, query, types or None)
    if path.startswith(ACTIVITIES + "/"):
        return activities(state, query, {path[len(ACTIVITIES) + 1:].upper()})
    if path == "/v2/assets":
        status = param(query, "status")
        asset_class = param(query, "asset_class")
        items = [asset_json(a) for a in state.assets.values()
                 if (status is None or a.status == status) and asset_class in (None, "us_equity")]
        return ok(sorted(items, key=lambda a: str(a["symbol"])))
    if path.startswith("/v2/assets/"):
        asset = state.assets.get(path[len("/v2/assets/"):].upper())
        return ok(asset_json(asset)) if asset is not None else not_found("asset not found")
    if path == "/v2/clock":
        return ok(clock_json(state.now(), state.calendar))
    if path == "/v2/calendar":
        today = state.now().date()
        start = _day(query, "start") or today - timedelta(days=30)
        end = _day(query, "end") or today + timedelta(days=30)
        return ok(calendar_json(state.calendar.sessions(start, end) if start <= end else [], state.calendar))
    return None


def activities(state: EmulatorState, query: Query, types: set[str] | None) -> Reply:
    """Account activities of `types`, filtered by date/after/until, ordered by `direction`, paged by
    `page_size` (at most 100) and `page_token` (the id of the last activity of the previous page)."""
    direction = param(query, "direction") or "desc"
    if direction not in ("asc", "desc"):
        raise invalid(f"invalid direction {direction!r}", CODE_REQUEST)
    after, until = timestamp(query, "after"), timestamp(query, "until")
    on_day = _day(query, "date")
    size = integer(query, "page_size", 100, 100)
    token = param(query, "page_token")

    def kept(a: Activity) -> bool:
        kind = "FILL" if isinstance(a, FillActivity) else a.activity_type if isinstance(a, CashActivity) else ""
        at = activity_time(a)
        return ((types is None or kind in types) and (after is None or at > after)
                and (until is None or at < until) and (on_day is None or at.date() == on_day))

    items = [a for a in state.exchange.activities() if kept(a)]
    if direction == "desc":
        items.reverse()
    if token is not None:
        ids = [a.id for a in items]
        if token in ids:
            items = items[ids.index(token) + 1:]
        else:
            raise invalid(f"invalid page_token {token!r}", CODE_REQUEST)
    return ok([activity_json(a) for a in items[:size]])


def _day(query: Query, name: str) -> date | None:
    value = param(query, name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise invalid(f"invalid {name} {value!r}", CODE_REQUEST) from None
