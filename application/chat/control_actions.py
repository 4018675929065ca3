"""Control actions of the chat (pause, resume, run a cycle, run evals, flatten), each only after an explicit
confirmation.

`propose` returns a `PendingAction` whose id (unguessable, single use) the UI sends with its confirm and cancel
buttons. `confirm(sent_id, returned_id)` acts only when the id that came back is the one sent, known, not
expired, not used and confirmed by the person who asked; otherwise it raises `ActionConfirmationError` and
nothing is done (the pending action is dropped: it must be asked for again). Execution failures (a queue down, a
broker refusing) are answered as an `ok=False` result instead. Every confirmation, cancellation and refusal is
written to the event log (CHAT_ACTION) with who asked and who confirmed.

A cycle or an eval run is only enqueued (the worker runs it; follow a cycle with `cycle_progress`); the kill
switch runs at once, as the API's does. Pending actions live in this process (the chat is one process).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from application.control import set_paused
from application.cycle_requests import CycleRequestService
from application.flatten import flatten
from application.queries import ReadModels
from domain.chat import ControlAction, PendingAction, ToolResult
from domain.errors import ActionConfirmationError, QuorumError
from domain.ports.broker import Broker
from domain.ports.clock import MarketCalendar
from domain.ports.queue import EvalRequests
from domain.ports.uow import UnitOfWorkFactory
from domain.system_events import chat_action

log = structlog.get_logger(__name__)
TOOL = "control"
REF_CHARS = 8
FINISHED = frozenset({"completed", "failed", "skipped"})
DESCRIPTIONS: dict[ControlAction, str] = {
    ControlAction.PAUSE: "pause trading (stops still run, no new entries)",
    ControlAction.RESUME: "resume trading",
    ControlAction.RUN_CYCLE: "run a trading cycle now",
    ControlAction.RUN_EVALS: "run the evals now",
    ControlAction.FLATTEN: "FLATTEN: cancel every open order, sell every position and pause trading",
}


def pending_json(p: PendingAction) -> dict[str, Any]:
    """A pending action as the UI and the model see it."""
    return {"id": p.id, "action": p.action.value, "description": DESCRIPTIONS[p.action],
            "requested_by": p.requested_by, "requested_at": p.requested_at.isoformat(),
            "expires_at": p.expires_at.isoformat(), "reason": p.reason}


def pending_from(result: ToolResult) -> PendingAction | None:
    """The action a `control` tool result proposed, or None (another tool, or a refusal)."""
    raw = result.data.get("pending") if result.ok and result.name == TOOL else None
    if not isinstance(raw, dict):
        return None
    return PendingAction(str(raw["id"]), ControlAction(raw["action"]), str(raw["requested_by"]),
                         datetime.fromisoformat(str(raw["requested_at"])),
                         datetime.fromisoformat(str(raw["expires_at"])), str(raw.get("reason", "")))


@dataclass(frozen=True, slots=True)
class CycleProgress:
    """Where a requested cycle is: `status` as recorded (queued, running, completed, failed, skipped, unknown)."""

    cycle_id: str
    status: str
    done: bool
    text: str


async def cycle_progress(read_models: ReadModels, cycle_id: str) -> CycleProgress:
    """The status of cycle `cycle_id` in one sentence, for a UI that polls until `done`."""
    record = await read_models.cycle(cycle_id)
    if record is None:
        return CycleProgress(cycle_id, "unknown", True, f"cycle {cycle_id} is not known")
    s = record.summary
    text = f"cycle {cycle_id}: {record.status}"
    if record.status == "completed":
        text += (f" — {s.get('considered', 0)} symbols considered, {s.get('orders', 0)} orders, "
                 f"{s.get('fills', 0)} fills")
    elif record.error:
        text += f" — {record.error}"
    return CycleProgress(cycle_id, record.status, record.status in FINISHED, text)


class ControlActions:
    """Proposes control actions and carries them out once confirmed (see the module docstring).

    Args:
        uow_factory: opens units of work.
        scope: the scope acted in.
        broker: for the kill switch.
        calendar: for the kill switch (market open or not).
        cycles: queues manual cycles; None refuses run_cycle (no queue in this process: no Redis).
        evals: queues eval runs; None refuses run_evals ("not configured").
        confirm_timeout: how long a proposal waits for its confirmation (settings.chat.confirm_timeout_s).
        lock_wait_seconds: how long the kill switch waits for a running cycle's lock.
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, scope: str, *, broker: Broker, calendar: MarketCalendar,
                 cycles: CycleRequestService | None, evals: EvalRequests | None, confirm_timeout: timedelta,
                 lock_wait_seconds: float = 10.0) -> None:
        if confirm_timeout <= timedelta(0):
            raise ValueError(f"confirm_timeout must be positive, got {confirm_timeout}")
        self._uow_factory, self.scope = uow_factory, scope
        self._broker, self._calendar, self._cycles, self._evals = broker, calendar, cycles, evals
        self.confirm_timeout, self.lock_wait_seconds = confirm_timeout, lock_wait_seconds
        self._pending: dict[str, PendingAction] = {}

    def unavailable(self, action: ControlAction) -> str | None:
        """Why `action` cannot be done here, or None when it can."""
        if action is ControlAction.RUN_EVALS and self._evals is None:
            return "evals are not configured in this deployment (no eval queue): run `quorum evals run` instead"
        if action is ControlAction.RUN_CYCLE and self._cycles is None:
            return ("cycles cannot be queued from the chat without Redis (set REDIS_URL so workers run them); "
                    "without it ask `quorum serve` with POST /api/cycles/run")
        return None

    def propose(self, action: ControlAction, *, by: str, reason: str, as_of: datetime) -> PendingAction:
        """A new pending action, valid for `confirm_timeout` from `as_of`.

        Raises:
            ActionConfirmationError: the action cannot be done here (see `unavailable`).
        """
        why = self.unavailable(action)
        if why is not None:
            raise ActionConfirmationError(why)
        self._pending = {k: p for k, p in self._pending.items() if p.expires_at > as_of}
        pending = PendingAction(secrets.token_urlsafe(24), ControlAction(action), by, as_of,
                                as_of + self.confirm_timeout, reason.strip()[:500])
        self._pending[pending.id] = pending
        log.info("chat_action_proposed", action=pending.action.value, by=by, ref=pending.id[:REF_CHARS])
        return pending

    @property
    def pending_count(self) -> int:
        """How many proposals are waiting (expired ones included until the next proposal drops them)."""
        return len(self._pending)

    def pending(self, action_id: str) -> PendingAction | None:
        """The pending action with this id, if it is still waiting (expired or not)."""
        return self._pending.get(action_id)

    async def confirm(self, sent_id: str, returned_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Carry out the action sent as `sent_id`, now that `returned_id` came back from `by`.

        Returns:
            What was done (`ok=False` when the action itself failed: the queue or the broker refused).

        Raises:
            ActionConfirmationError: the ids differ, the action is unknown, already used or cancelled, expired,
                or confirmed by someone else than who asked. Nothing is done and the action is dropped.
        """
        pending = self._pending.pop(sent_id, None)
        problem = ("unknown action id: it was already confirmed or cancelled, or never proposed" if pending is None
                   else self._refusal(pending, sent_id, returned_id, by, as_of))
        if pending is None or problem is not None:
            await self._record(pending, "refused", by=by, detail=problem or "", as_of=as_of, ref=sent_id)
            log.warning("chat_action_refused", by=by, problem=problem, ref=sent_id[:REF_CHARS])
            raise ActionConfirmationError(problem)
        try:
            result = await self._execute(pending, by=by, as_of=as_of)
        except (QuorumError, ValueError) as exc:
            result = ToolResult(TOOL, {"action": pending.action.value}, False,
                                f"{pending.action.value} failed: {exc}", {"action": pending.action.value})
        await self._record(pending, "done" if result.ok else "failed", by=by, detail=result.text, as_of=as_of,
                           ref=pending.id)
        return result

    async def cancel(self, action_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Drop a pending action without doing it (recorded). Cancelling an unknown or used id answers ok=False."""
        pending = self._pending.pop(action_id, None)
        if pending is None:
            return ToolResult(TOOL, {}, False, "there is no pending action with this id (already confirmed, "
                              "cancelled or never proposed)")
        await self._record(pending, "cancelled", by=by, detail="", as_of=as_of, ref=pending.id)
        return ToolResult(TOOL, {"action": pending.action.value}, True,
                          f"cancelled: {DESCRIPTIONS[pending.action]} was not done",
                          {"action": pending.action.value, "cancelled": True})

    @staticmethod
    def _refusal(pending: PendingAction, sent_id: str, returned_id: str, by: str, as_of: datetime) -> str | None:
        if not secrets.compare_digest(sent_id.encode(), returned_id.encode()):
            return "the confirmation does not match the action it was sent for; nothing was done, ask again"
        if as_of >= pending.expires_at:
            return f"the confirmation came too late (it expired at {pending.expires_at.isoformat()}); ask again"
        if by != pending.requested_by:
            return f"only {pending.requested_by}, who asked, can confirm this action"
        return None

    async def _execute(self, p: PendingAction, *, by: str, as_of: datetime) -> ToolResult:
        args = {"action": p.action.value, "reason": p.reason}
        if p.action in (ControlAction.PAUSE, ControlAction.RESUME):
            paused = p.action is ControlAction.PAUSE
            control = await set_paused(self._uow_factory, self.scope, paused=paused, by=by, reason=p.reason,
                                       as_of=as_of)
            return ToolResult(TOOL, args, True, f"trading {'paused' if paused else 'resumed'} by {by}",
                              {"action": p.action.value, "paused": control.paused})
        if p.action is ControlAction.RUN_CYCLE:
            if self._cycles is None:
                return ToolResult(TOOL, args, False, self.unavailable(p.action) or "", {"action": p.action.value})
            asked = await self._cycles.request("manual", None, as_of)
            text = (f"cycle {asked.cycle_id} already covers this request" if asked.deduplicated
                    else f"cycle {asked.cycle_id} queued")
            return ToolResult(TOOL, args, True, text, {"action": p.action.value, "cycle_id": asked.cycle_id,
                                                       "deduplicated": asked.deduplicated})
        if p.action is ControlAction.RUN_EVALS:
            if self._evals is None:
                return ToolResult(TOOL, args, False, self.unavailable(p.action) or "", {"action": p.action.value})
            job_id = await self._evals.request_evals(as_of)
            return ToolResult(TOOL, args, True, f"eval run queued (job {job_id})",
                              {"action": p.action.value, "job_id": job_id})
        done = await flatten(self._uow_factory, self._broker, self._calendar, scope=self.scope, as_of=as_of, by=by,
                             reason=p.reason, lock_wait_seconds=self.lock_wait_seconds)
        return ToolResult(TOOL, args, not done.failed, done.message,
                          {"action": p.action.value, "market_open": done.market_open, "cancelled": done.cancelled,
                           "sells": [{"symbol": o.symbol, "qty": str(o.request.qty)} for o in done.sells],
                           "failed": done.failed})

    async def _record(self, p: PendingAction | None, outcome: str, *, by: str, detail: str, as_of: datetime,
                      ref: str) -> None:
        event = chat_action(at=as_of, scope=self.scope, action="unknown" if p is None else p.action.value,
                            outcome=outcome, by=by, requested_by=by if p is None else p.requested_by,
                            reason="" if p is None else p.reason, detail=detail[:1000], action_ref=ref[:REF_CHARS])
        async with self._uow_factory() as uow:
            await uow.events.add([event])
            await uow.commit()
