"""Event text is scrubbed of secrets like logs and alerts: a provider's error quoting an API key reaches the
event log (in memory and in Postgres) with the key masked, in the message and in the payload."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from application.llm_gateway import LLMGateway
from domain.errors import LLMError
from domain.events import Event, EventType, Severity
from domain.ports.llm import Decision, LLMRequest, Message
from domain.ports.repositories import EventQuery
from domain.ports.uow import UnitOfWorkFactory
from domain.redaction import register_secret

AS_OF = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


class Ok(BaseModel):
    ok: bool


class LeakyLLM:
    """A paid model whose provider error quotes the key it was sent."""

    provider = "openai"

    def __init__(self, key: str) -> None:
        self.key = key

    async def complete(self, request: LLMRequest[Any]) -> Decision[Any]:
        raise LLMError(f"AuthenticationError: Incorrect API key provided: {self.key}. See your dashboard.")


async def test_an_llm_error_carrying_an_api_key_is_stored_scrubbed(uow_factory: UnitOfWorkFactory,
                                                                   scope: str) -> None:
    key = f"sk-proj-{uuid.uuid4().hex}"
    register_secret(key)                  # what `register_secrets(settings)` does at start-up
    gateway = LLMGateway({"default": LeakyLLM(key)}, 1.0, scope, ZoneInfo("America/New_York"))
    request = LLMRequest(agent="signal", messages=(Message("user", "?"),), output_schema=Ok,
                         context=Ok(ok=True), as_of=AS_OF, cycle_id="cycle-1")
    assert await gateway.ask(request) is None
    async with uow_factory() as uow:
        await gateway.flush(uow, "cycle-1")
        await uow.commit()
    async with uow_factory() as uow:
        [event] = await uow.events.query(EventQuery(scope, types=(EventType.LLM_FAILED,)))
    assert key not in event.message and key not in str(event.payload)
    assert "Incorrect API key provided: ***" in event.message and "***" in event.payload["error"]


async def test_every_string_of_a_payload_is_scrubbed_keys_and_lists_included(uow_factory: UnitOfWorkFactory,
                                                                            scope: str) -> None:
    secret = f"hunter2-{uuid.uuid4().hex}"
    register_secret(secret)
    event = Event(type=EventType.SYSTEM_ERROR, at=AS_OF, message=f"login with {secret} failed",
                  severity=Severity.CRITICAL, payload={"detail": {"tried": [f"pw={secret}", 3], secret: "x"},
                                                    "count": 2}, scope=scope)
    async with uow_factory() as uow:
        await uow.events.add([event])
        await uow.commit()
    async with uow_factory() as uow:
        [stored] = await uow.events.query(EventQuery(scope))
    assert stored.message == "login with *** failed"
    assert stored.payload == {"detail": {"tried": ["pw=***", 3], "***": "x"}, "count": 2}
