"""The chat probe: the campaign asks the chat assistant a fixed question every day and records whether it answered.

The assistant is the chat's own (`application.chat.agent.ChatAssistant`: the model within the daily cap, or the
router), on the same tools and database as the chat UI. The question needs the portfolio tool, so an answer proves
the tools reach the broker and the database. A CHAT_PROBE event records the outcome (INFO when answered, WARNING
when not, so a failing chat is alerted).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import structlog

from application.chat.contracts import ChatAnswer, NullStepSink, StepSink
from domain.chat import ChatTurn
from domain.events import Event, EventType, Severity
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)
PROBE_QUESTION = "What is in the portfolio?"
PROBE_USER = "paper-campaign probe"


class Answering(Protocol):
    """Answers a chat message (`application.chat.agent.ChatAssistant`)."""

    async def answer(self, history: Sequence[ChatTurn], text: str, *, who: str, as_of: datetime,
                     steps: StepSink) -> ChatAnswer:
        """The answer to `text`."""
        ...


async def probe_chat(assistant: Answering, uow_factory: UnitOfWorkFactory, scope: str, *, as_of: datetime) -> Event:
    """Ask `PROBE_QUESTION` and record the CHAT_PROBE event: answered when the reply is not empty and every tool it
    used answered (at least one did). Returns the event."""
    try:
        reply = await assistant.answer([], PROBE_QUESTION, who=PROBE_USER, as_of=as_of, steps=NullStepSink())
        failed = [r.name for r in reply.results if not r.ok]
        ok = bool(reply.text.strip()) and bool(reply.results) and not failed
        model = reply.model
        detail = (f"answered with {', '.join(r.name for r in reply.results)}" if ok else
                  f"tools failed: {', '.join(failed)}" if failed else "no tool was used or the reply was empty")
    except Exception as exc:  # noqa: BLE001 - the probe reports whatever broke the chat
        ok, model, detail = False, "?", f"{type(exc).__name__}: {str(exc)[:300]}"
        log.warning("chat_probe_failed", error=detail)
    event = Event(type=EventType.CHAT_PROBE, at=as_of, severity=Severity.INFO if ok else Severity.WARNING,
                  message=f"chat probe {'answered' if ok else 'FAILED'}: {detail}", scope=scope,
                  payload={"ok": ok, "question": PROBE_QUESTION, "model": model, "detail": detail})
    async with uow_factory() as uow:
        await uow.events.add([event])
        await uow.commit()
    return event
