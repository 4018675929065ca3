"""Chat control actions: nothing happens without a confirmation whose returned id is the one sent, unexpired,
unused and from who asked; each confirmation, cancellation and refusal is in the event log with who asked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.chat.control_actions import cycle_progress
from domain.alerts import is_alert_worthy, render_alert
from domain.chat import ControlAction
from domain.errors import ActionConfirmationError
from domain.events import Event, EventType, Severity
from domain.ports.repositories import EventQuery
from domain.system_events import chat_action
from tests.support.chat_fakes import SCOPE, ChatWorld, make_chat_world

AT = datetime(2024, 7, 3, 15, 0, tzinfo=UTC)
LATER = AT + timedelta(seconds=10)


async def events(world: ChatWorld, *types: EventType) -> list[Event]:
    async with world.uow() as uow:
        return list(reversed(await uow.events.query(EventQuery(SCOPE, types=types))))


async def paused(world: ChatWorld) -> bool:
    async with world.uow() as uow:
        return (await uow.trading.load(SCOPE)).control.paused


async def test_pause_pauses_and_the_log_names_who_asked() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.PAUSE, by="alice", reason="earnings week", as_of=AT)
    result = await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)
    assert result.ok and result.text == "trading paused by alice" and await paused(world)
    [switched] = await events(world, EventType.TRADING_PAUSED)
    assert switched.message == "trading paused by alice: earnings week"
    [logged] = await events(world, EventType.CHAT_ACTION)
    assert logged.payload["action"] == "pause" and logged.payload["outcome"] == "done"
    assert logged.payload["requested_by"] == "alice" and logged.payload["by"] == "alice"
    assert logged.message.startswith("chat action pause done (asked by alice, confirmed by alice): earnings week")
    assert logged.payload["action_ref"] == p.id[:8] and p.id not in logged.message


async def test_a_wrong_returned_id_is_refused_nothing_happens_and_the_action_is_dropped() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.PAUSE, by="alice", reason="", as_of=AT)
    other = world.controls.propose(ControlAction.RESUME, by="alice", reason="", as_of=AT)
    with pytest.raises(ActionConfirmationError, match="does not match"):
        await world.controls.confirm(p.id, other.id, by="alice", as_of=LATER)
    assert not await paused(world) and await events(world, EventType.TRADING_PAUSED) == []
    with pytest.raises(ActionConfirmationError, match="unknown action id"):
        await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)
    assert not await paused(world)
    refusals = await events(world, EventType.CHAT_ACTION)
    assert [e.payload["outcome"] for e in refusals] == ["refused", "refused"]


async def test_an_unknown_id_is_refused() -> None:
    world = make_chat_world()
    with pytest.raises(ActionConfirmationError, match="unknown action id"):
        await world.controls.confirm("guessed", "guessed", by="mallory", as_of=AT)
    assert not await paused(world)


async def test_an_expired_confirmation_is_refused() -> None:
    world = make_chat_world(confirm_s=30)
    p = world.controls.propose(ControlAction.PAUSE, by="alice", reason="", as_of=AT)
    assert p.expires_at == AT + timedelta(seconds=30)
    with pytest.raises(ActionConfirmationError, match="too late"):
        await world.controls.confirm(p.id, p.id, by="alice", as_of=AT + timedelta(seconds=30))
    assert not await paused(world)


async def test_a_confirmation_cannot_be_used_twice() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.RUN_CYCLE, by="alice", reason="", as_of=AT)
    assert (await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)).ok
    with pytest.raises(ActionConfirmationError, match="unknown action id"):
        await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER + timedelta(minutes=2))
    assert len(world.queue.jobs) == 1


async def test_only_who_asked_can_confirm() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.PAUSE, by="alice", reason="", as_of=AT)
    with pytest.raises(ActionConfirmationError, match="only alice"):
        await world.controls.confirm(p.id, p.id, by="bob", as_of=LATER)
    assert not await paused(world)


async def test_cancel_writes_an_event_and_the_action_cannot_be_confirmed_after() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.FLATTEN, by="alice", reason="panic", as_of=AT)
    result = await world.controls.cancel(p.id, by="alice", as_of=LATER)
    assert result.ok and "was not done" in result.text
    [logged] = await events(world, EventType.CHAT_ACTION)
    assert (logged.payload["action"], logged.payload["outcome"], logged.payload["by"]) == (
        "flatten", "cancelled", "alice")
    assert logged.severity is Severity.INFO
    with pytest.raises(ActionConfirmationError):
        await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)
    assert not await paused(world) and await events(world, EventType.KILL_SWITCH) == []
    assert not (await world.controls.cancel(p.id, by="alice", as_of=LATER)).ok


async def test_run_cycle_enqueues_exactly_one_manual_job_to_follow() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.RUN_CYCLE, by="alice", reason="check NVDA", as_of=AT)
    result = await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)
    [job] = world.queue.jobs
    assert result.ok and job.kind == "manual" and result.data["cycle_id"] == job.cycle_id
    assert f"cycle {job.cycle_id} queued" == result.text
    progress = await cycle_progress(world.read_models, job.cycle_id)
    assert (progress.status, progress.done) == ("queued", False) and progress.text == f"cycle {job.cycle_id}: queued"
    [logged] = await events(world, EventType.CHAT_ACTION)
    assert job.cycle_id in logged.payload["detail"]
    unknown = await cycle_progress(world.read_models, "c-nope")
    assert unknown.done and unknown.status == "unknown"


async def test_run_evals_queues_a_job_and_is_refused_without_an_eval_queue() -> None:
    world = make_chat_world()
    p = world.controls.propose(ControlAction.RUN_EVALS, by="alice", reason="", as_of=AT)
    result = await world.controls.confirm(p.id, p.id, by="alice", as_of=LATER)
    assert result.ok and result.data["job_id"] == "evals-202407031500" and world.evals is not None
    assert world.evals.asked == [LATER]
    bare = make_chat_world(evals=False)
    with pytest.raises(ActionConfirmationError, match="not configured"):
        bare.controls.propose(ControlAction.RUN_EVALS, by="alice", reason="", as_of=AT)


async def test_run_cycle_without_a_queue_is_refused_up_front_saying_what_to_do() -> None:
    world = make_chat_world(cycles=False)
    with pytest.raises(ActionConfirmationError, match="REDIS_URL"):
        world.controls.propose(ControlAction.RUN_CYCLE, by="alice", reason="", as_of=AT)
    assert world.queue.jobs == []


async def test_flatten_sells_everything_and_pauses() -> None:
    world = make_chat_world()
    at = await world.hold("AAA", "5")
    p = world.controls.propose(ControlAction.FLATTEN, by="alice", reason="going on holiday", as_of=at)
    result = await world.controls.confirm(p.id, p.id, by="alice", as_of=at + timedelta(seconds=5))
    assert result.ok and result.data["sells"] == [{"symbol": "AAA", "qty": "5"}] and await paused(world)
    [kill] = await events(world, EventType.KILL_SWITCH)
    assert "alice" in kill.message
    [logged] = await events(world, EventType.CHAT_ACTION)
    assert logged.payload["outcome"] == "done" and "kill switch" in logged.payload["detail"]


async def test_the_ids_are_unguessable_and_distinct() -> None:
    world = make_chat_world()
    ids = {world.controls.propose(ControlAction.PAUSE, by="a", reason="", as_of=AT).id for _ in range(50)}
    assert len(ids) == 50 and all(len(i) >= 32 for i in ids)


def test_the_chat_action_event_is_quiet_unless_the_action_failed() -> None:
    done = chat_action(at=AT, scope=SCOPE, action="run_cycle", outcome="done", by="alice", requested_by="alice",
                       reason="", detail="cycle c-1 queued", action_ref="abcdefgh")
    assert done.message == "chat action run_cycle done (asked by alice, confirmed by alice) — cycle c-1 queued"
    assert done.severity is Severity.INFO and not is_alert_worthy(done)
    failed = chat_action(at=AT, scope=SCOPE, action="flatten", outcome="failed", by="alice", requested_by="alice",
                         reason="", detail="1 problems", action_ref="abcdefgh")
    assert failed.severity is Severity.WARNING and is_alert_worthy(failed)
    assert render_alert(failed).title == "Chat action"
