"""System status, pause and resume, the circuit breaker and its manual resume approval."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get, post

from application.control import approve_breaker_resume, set_paused
from application.flatten import flatten
from entrypoints.api.common import READ_SECURITY, WRITE_SECURITY
from entrypoints.api.errors import error_responses
from entrypoints.api.services import ApiServices
from entrypoints.api.shapes import breaker_json, control_json, flatten_json, system_status_json

PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"  # no control characters (Postgres refuses NUL)
Who = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=PRINTABLE,
                                  description="who asks (kept in the event log)")]
Text = Annotated[str, msgspec.Meta(max_length=1000, pattern=PRINTABLE)]


class PauseRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Who pauses or resumes trading, and why."""

    by: Who = "api"
    reason: Text = ""


class FlattenRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Who pulls the kill switch, and why."""

    by: Who = "api"
    reason: Text = ""


class BreakerResumeRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A person's approval to resume trading after a breaker trip."""

    by: Who
    note: Text = ""


@get("/system/status", security=READ_SECURITY, tags=["system"], responses=error_responses(401),
     summary="Trading state, breaker, last cycle, market clock")
async def system_status(services: ApiServices) -> dict[str, Any]:
    """Whether trading is active, paused or exits-only (breaker), the last cycle and the market clock."""
    return system_status_json(await services.read_models.system_status(services.clock.now()))


async def _set_paused(services: ApiServices, data: PauseRequest | None, *, paused: bool) -> dict[str, Any]:
    body = data or PauseRequest()
    if not body.by.strip():
        raise ValueError("by must not be blank")
    control = await set_paused(services.uow_factory, services.scope, paused=paused, by=body.by.strip(),
                               as_of=services.clock.now(), reason=body.reason)
    return control_json(control)


@post("/system/pause", status_code=200, security=WRITE_SECURITY, tags=["system"],
      responses=error_responses(400, 401, 503), summary="Pause trading")
async def pause(services: ApiServices, data: PauseRequest | None = None) -> dict[str, Any]:
    """Pause trading: cycles are skipped until resumed. Recorded in the event log."""
    return await _set_paused(services, data, paused=True)


@post("/system/resume", status_code=200, security=WRITE_SECURITY, tags=["system"],
      responses=error_responses(400, 401, 503), summary="Resume trading after a pause")
async def resume(services: ApiServices, data: PauseRequest | None = None) -> dict[str, Any]:
    """Undo a pause. Does not touch the circuit breaker (see /api/system/circuit-breaker/resume)."""
    return await _set_paused(services, data, paused=False)


@get("/system/circuit-breaker", security=READ_SECURITY, tags=["system"], responses=error_responses(401),
     summary="Circuit breaker state")
async def circuit_breaker(services: ApiServices) -> dict[str, Any]:
    """The breaker's status, trip, last auto-resume check and approvals; `can_resume` when eligible."""
    return breaker_json(await services.read_models.breaker())


@post("/system/circuit-breaker/resume", status_code=200, security=WRITE_SECURITY, tags=["system"],
      responses=error_responses(400, 401, 409, 503), summary="Approve resuming trading after a trip")
async def approve_resume(services: ApiServices, data: BreakerResumeRequest) -> dict[str, Any]:
    """A person approves resuming trading. Refused (409, with the reasons) unless the breaker is eligible."""
    state = await approve_breaker_resume(services.uow_factory, services.scope, by=data.by,
                                         as_of=services.clock.now(), settings=services.breaker_settings,
                                         note=data.note)
    return breaker_json(state)


@post("/system/flatten", status_code=200, security=WRITE_SECURITY, tags=["system"],
      responses=error_responses(400, 401, 503), summary="Kill switch: cancel every order, close every position")
async def flatten_all(services: ApiServices, data: FlattenRequest | None = None) -> dict[str, Any]:
    """Pause trading, cancel every open order and send a market sell for every position (queued for the next
    open when the market is closed; the answer says so). Written to the event log as a CRITICAL alert."""
    body = data or FlattenRequest()
    if not body.by.strip():
        raise ValueError("by must not be blank")
    result = await flatten(services.uow_factory, services.broker, services.calendar, scope=services.scope,
                           as_of=services.clock.now(), by=body.by.strip(), reason=body.reason)
    return flatten_json(result)


ROUTES = [system_status, pause, resume, circuit_breaker, approve_resume, flatten_all]
