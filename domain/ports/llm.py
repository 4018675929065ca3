"""LLM port. A request carries the typed context, the rendered messages and the output schema.

An LLM only proposes: everything it returns is validated against the schema
and then held inside the hard limits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

OutputT = TypeVar("OutputT", bound=BaseModel)
AgentName = Literal["signal", "risk", "validator", "picker"]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class LLMRequest(Generic[OutputT]):
    """What an agent asks of an LLM.

    Attributes:
        agent: which agent asks (selects the model in settings).
        messages: the rendered prompt.
        output_schema: the pydantic model the answer must validate against.
        context: the typed context the prompt was rendered from (the offline
            policy decides from it directly).
        as_of: simulated or real time of the request (for budgets and logs).
        cycle_id: the cycle this call belongs to, if any.
        max_output_tokens: the completion limit of this call (None: the model's configured limit); with the
            prompt, what the call may cost at most.
        budget: who approves the spend of each attempt after the first (the gateway's reservation); None: no
            limit beyond the adapter's retries.
    """

    agent: AgentName
    messages: tuple[Message, ...]
    output_schema: type[OutputT]
    context: BaseModel
    as_of: datetime
    cycle_id: str | None = None
    max_output_tokens: int | None = None
    budget: AttemptBudget | None = field(default=None, compare=False, repr=False)

    def fingerprint(self, model: str) -> str:
        """Stable hash of model, agent, schema and messages (the replay key)."""
        payload = {
            "model": model,
            "agent": self.agent,
            "schema": self.output_schema.__name__,
            "messages": [[m.role, m.content] for m in self.messages],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class LLMUsage:
    """Cost and speed of one call; `cached_prompt_tokens` of the `prompt_tokens` were read from the provider's
    prompt cache (and priced at its cached rate)."""

    provider: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    attempts: int = 1
    replayed: bool = False
    cost_known: bool = True
    cached_prompt_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Decision(Generic[OutputT]):
    """A validated answer and what it cost."""

    output: OutputT
    usage: LLMUsage
    raw: str = field(default="", repr=False)


@runtime_checkable
class LLM(Protocol):
    """A language model that answers in a typed schema."""

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """Answer `request` with an instance of `request.output_schema`.

        Raises:
            LLMError: the call failed after retries or the output never validated.
            LLMBudgetExceededError: the daily spending cap is reached.
        """
        ...


class AttemptBudget(Protocol):
    """Approves the spend of a call's next attempt (a retry or a re-ask) before it is made."""

    async def another_attempt(self, spent_usd: float, next_attempt_usd: float) -> bool:
        """Whether an attempt costing at most `next_attempt_usd` may be made after attempts that cost `spent_usd`;
        False: the call must stop (the daily cap cannot cover it)."""
        ...


@runtime_checkable
class CallEstimating(Protocol):
    """An LLM that can say what one attempt of a request may cost at most: its prompt tokens (counted) at the input
    price and its completion limit at the output price."""

    def estimate_cost_usd(self, request: LLMRequest[Any]) -> float | None:
        """The most one attempt of `request` may cost; None when the model has no price."""
        ...


@runtime_checkable
class CostEstimating(Protocol):
    """An LLM that can say what a call may cost at most (its price for the prompt and the completion limit)."""

    def worst_case_cost_usd(self, agent: str, prompt_chars: int) -> float | None:
        """The most a call of `agent` with a prompt of `prompt_chars` characters may cost; None when unknown."""
        ...
