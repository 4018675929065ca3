"""The breaker drill: each rule of the circuit breaker tripped by an injected fault, through the cycle's own
booking (`application.cycle.breaker_book.book_breaker`), in a scope of its own so the account keeps trading.

A two-week paper campaign rarely sees a 20% drawdown; the go-live criteria still want every rule seen to trip.
For each rule the drill starts a fresh ACTIVE breaker at the account's equity and books the fault that rule
watches with the configured thresholds: an equity just past the drawdown limit, a day's loss just past the daily
limit, a run of losing trades as long as the limit, system errors as many as the limit. It then checks the
breaker TRIPPED on that rule and blocks entries, and writes the trip's BREAKER_TRIPPED event (payload
`drill: true`) to the drill scope (`campaign.drill_scope`), where the campaign's criterion finds it. Nothing is
written to the trading scope: no alert, no real breaker state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from application.cycle.breaker_book import book_breaker, trip_events
from application.cycle.fills import ClosedTrade
from application.paper.campaign import ALL, drill_scope
from application.paper.criteria import BREAKER_RULES
from domain import breaker as brk
from domain.events import EventType
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWorkFactory
from domain.risk.config import BreakerSettings


@dataclass(frozen=True, slots=True)
class DrillResult:
    """One rule's drill: whether the breaker tripped on it (and blocked entries), and its stated reason."""

    rule: str
    tripped: bool
    reason: str


def _fault(rule: str, equity: Decimal, settings: BreakerSettings,
           as_of: datetime) -> tuple[brk.BreakerState, list[brk.Trip | None]]:
    state = brk.initial_state(equity)
    if rule == "drawdown":
        low = equity * (1 - Decimal(str(settings.max_drawdown_pct))) * Decimal("0.99")
        return book_breaker(state, [], equity=low, day_start_equity=low, as_of=as_of, settings=settings, error=False)
    if rule == "daily_loss":
        day_start = equity / (1 - Decimal(str(settings.max_daily_loss_pct)) * Decimal("1.01"))
        return book_breaker(state, [], equity=equity, day_start_equity=day_start, as_of=as_of, settings=settings,
                            error=False)
    if rule == "consecutive_losses":
        losers = [ClosedTrade("DRILL", Decimal(1), Decimal(100), Decimal(99), -0.01, as_of, "drill", f"drill-{i}")
                  for i in range(settings.max_consecutive_losses)]
        return book_breaker(state, losers, equity=equity, day_start_equity=equity, as_of=as_of, settings=settings,
                            error=False)
    if rule == "system_errors":
        trips: list[brk.Trip | None] = []
        for _ in range(settings.max_system_errors):
            state, more = book_breaker(state, [], equity=equity, day_start_equity=equity, as_of=as_of,
                                       settings=settings, error=True)
            trips += more
        return state, trips
    raise ValueError(f"unknown breaker rule {rule!r}; the rules are {', '.join(BREAKER_RULES)}")


async def breaker_drill(uow_factory: UnitOfWorkFactory, scope: str, *, equity: Decimal, settings: BreakerSettings,
                        as_of: datetime, rules: tuple[str, ...] = BREAKER_RULES) -> list[DrillResult]:
    """Trip each of `rules` by an injected fault and record the trips in the drill scope of `scope`.

    Args:
        uow_factory: units of work.
        scope: the campaign's scope (the events go to `drill_scope(scope)`).
        equity: the account's equity (the drill's starting point).
        settings: the breaker thresholds in force.
        as_of: now (timezone-aware).
        rules: which rules to drill (default all).

    Returns:
        One result per rule; a rule that did not trip (or did not block entries) has `tripped` False and writes
        nothing.
    """
    if equity <= 0:
        raise ValueError(f"the drill needs a positive equity, got {equity}")
    results, events = [], []
    for rule in rules:
        state, trips = _fault(rule, equity, settings, as_of)
        mine = [t for t in trips if t is not None and t.trigger == rule]
        ok = bool(mine) and state.trip_trigger == rule and not brk.allows_entries(state)
        results.append(DrillResult(rule, ok, mine[0].reason if mine else f"the {rule} rule did not trip"))
        if ok:
            events += [replace(e, payload={**e.payload, "drill": True})
                       for e in trip_events(mine[:1], f"breaker-drill:{rule}:{as_of.isoformat()}", drill_scope(scope))]
    if events:
        async with uow_factory() as uow:
            await uow.events.add(events)
            await uow.commit()
    return results


async def untripped_rules(uow_factory: UnitOfWorkFactory, scope: str, *, since: datetime,
                          until: datetime) -> tuple[str, ...]:
    """The breaker rules that tripped neither in `scope` nor in its drills in [since, until]."""
    tripped: set[str] = set()
    async with uow_factory() as uow:
        for where in (scope, drill_scope(scope)):
            events = await uow.events.query(EventQuery(where, types=(EventType.BREAKER_TRIPPED,), since=since,
                                                       until=until + timedelta(microseconds=1), limit=ALL))
            tripped |= {str(e.payload.get("trigger")) for e in events}
    return tuple(r for r in BREAKER_RULES if r not in tripped)
