"""What the event monitor watches: the watchlist of a scope and the broker's open positions.

The trading cycle trades the watchlist and manages the open positions, so a 5% move in either is worth an event
cycle. Each poll reads both afresh: the watchlist from the database (discovery and manual edits change it during
the day) and the positions from the broker (fills change them). Symbols asked for by hand (`extra`) are added.
An empty watchlist is not replaced by any other list: the monitor then watches the positions (and `extra`) only,
and says so in the log when that starts (and again when the watchlist fills). A failure to read either source
propagates, so the monitor keeps watching the symbols of its last successful poll.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import structlog

from application.event_monitor import SymbolsProvider
from domain.memory import DEFAULT_SCOPE
from domain.ports.broker import Broker
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)


def watchlist_and_positions(uow_factory: UnitOfWorkFactory, broker: Broker, scope: str = DEFAULT_SCOPE, *,
                            extra: Collection[str] = ()) -> SymbolsProvider:
    """The event monitor's symbols: the watchlist of `scope`, the open positions and `extra`.

    Args:
        uow_factory: units of work on the database holding the watchlist.
        broker: the account whose open positions are watched.
        scope: the watchlist's scope ("live" by default).
        extra: symbols always watched besides (upper-cased).

    Returns:
        async (as_of) -> the symbols, sorted and unique.
    """
    always = {s.strip().upper() for s in extra if s.strip()}
    state: dict[str, object] = {}

    async def provider(as_of: datetime) -> list[str]:
        async with uow_factory() as uow:
            watched = {e.symbol.upper() for e in await uow.watchlist.list(scope)}
        held = {p.symbol.upper() for p in await broker.positions()}
        symbols = sorted(watched | held | always)
        empty = not watched
        if state.get("empty") != empty:
            if empty:
                log.warning("monitor_watchlist_empty", scope=scope, positions=sorted(held), extra=sorted(always),
                            reason=f"the {scope!r} watchlist is empty: watching open positions"
                            + (" and the given symbols" if always else "") + " only")
            else:
                log.info("monitor_watchlist_filled", scope=scope, watchlist=len(watched))
        if state.get("symbols") != symbols:
            log.info("monitor_symbols", scope=scope, watchlist=len(watched), positions=len(held), extra=len(always),
                     symbols=symbols, as_of=as_of.isoformat())
        state.update(empty=empty, symbols=symbols)
        return symbols

    return provider
