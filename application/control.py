"""Operator controls: breaker status and manual resume approval, pausing and resuming trading."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from application.cycle.breaker_book import BREAKER_DOC, save_breaker, save_shadow_book
from domain import breaker as brk
from domain.ports.uow import UnitOfWorkFactory
from domain.risk.config import BreakerSettings
from domain.system_events import breaker_resumed, trading_switched
from domain.trading_state import ControlState


async def breaker_state(uow_factory: UnitOfWorkFactory, scope: str) -> brk.BreakerState | None:
    """The stored breaker state, or None before the first cycle."""
    async with uow_factory() as uow:
        doc = await uow.state.load(scope, BREAKER_DOC)
    return None if doc is None else brk.BreakerState.from_dict(doc)


async def approve_breaker_resume(uow_factory: UnitOfWorkFactory, scope: str, *, by: str, as_of: datetime,
                                 settings: BreakerSettings, equity: Decimal | None = None,
                                 note: str = "") -> brk.BreakerState:
    """Resume trading after a trip. Only an ELIGIBLE breaker can be resumed; the approval is recorded and the
    shadow book is cleared (the next trip starts a fresh one from the equity at that trip).

    Raises:
        BreakerNotEligibleError: not tripped, or tripped and not eligible (with the reasons).
    """
    async with uow_factory() as uow:
        doc = await uow.state.load(scope, BREAKER_DOC)
        if doc is None:
            raise brk.BreakerNotEligibleError("breaker has never tripped: there is nothing to resume")
        state = brk.approve_resume(brk.BreakerState.from_dict(doc), by=by, as_of=as_of, equity=equity, note=note,
                                   settings=settings)
        await save_breaker(uow, scope, state, at=as_of)
        await save_shadow_book(uow, scope, None, at=as_of)
        await uow.events.add([breaker_resumed(at=as_of, scope=scope, by=by, note=note)])
        await uow.commit()
    return state


async def set_paused(uow_factory: UnitOfWorkFactory, scope: str, *, paused: bool, by: str, as_of: datetime,
                     reason: str = "") -> ControlState:
    """Pause or resume trading; recorded in the event log. While paused, cycles still reconcile, keep every
    position protected and take stop exits, but make no entry and ask no agent.

    Returns:
        The switch as stored.
    """
    control = ControlState(paused=paused, by=by, reason=reason, at=as_of)
    async with uow_factory() as uow:
        await uow.trading.set_control(scope, control, at=as_of)
        await uow.events.add([trading_switched(at=as_of, scope=scope, paused=paused, by=by, reason=reason)])
        await uow.commit()
    return control


async def is_paused(uow_factory: UnitOfWorkFactory, scope: str) -> bool:
    """Whether trading is paused."""
    async with uow_factory() as uow:
        return (await uow.trading.load(scope)).control.paused
