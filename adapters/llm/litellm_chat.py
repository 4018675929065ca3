"""LiteLLMChat: the ToolCallingLLM port on litellm tool calling (OpenAI-style `tools`, any litellm provider).

Turns become OpenAI messages (assistant turns with `tool_calls`, tool turns with `tool_call_id`) and the answer
becomes a `ChatReply`. Tool-call arguments are parsed from JSON; text that is not a JSON object does not fail the
call: it comes back as a `ToolCall` whose only argument is `UNPARSED_ARGUMENTS` (the raw text), which the
assistant answers as bad arguments without running the tool, so the model can correct itself.

Retries follow `LiteLLM`: timeouts, connection failures, 408/409/425/429 and 5xx are retried with exponential
back-off (Retry-After honoured, capped), as is an empty answer (no text and no tool calls); 400, 401 and a missing
key fail at once. A call that fails for good raises `LLMCallFailedError` with what the attempts cost. Cost comes
from the configured price (`prices`) or litellm's packaged cost map; a model neither prices costs 0.0 with
`usage.cost_known` False (start-up refuses such a paid chat model).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog

from adapters.llm.litellm_adapter import (
    LLMCallFailedError,
    Sleep,
    _litellm,
    _Tally,
    is_retryable,
    provider_of,
    retry_after_seconds,
    worst_case_cost,
)
from domain.chat import UNPARSED_ARGUMENTS, ChatTurn, ToolCall, ToolSpec
from domain.errors import ConfigurationError
from domain.ports.chat import ChatReply, ToolCallingLLM

log = structlog.get_logger(__name__)
AGENT = "chat"


class EmptyAnswerError(Exception):
    """The model answered neither text nor tool calls (retried like a transient failure)."""


class LiteLLMChat(ToolCallingLLM):
    """Implements `ToolCallingLLM` with `litellm.acompletion(tools=..., tool_choice="auto")`.

    Args:
        model: litellm model string with a provider prefix ("openai/gpt-4o-mini").
        api_key: the provider's key (None: litellm's environment variables); never logged.
        api_base: base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1).
        timeout_s: timeout of one attempt.
        max_retries: retries after the first attempt.
        backoff_base_s: delay before the first retry, doubled at each retry.
        backoff_cap_s: longest delay (a longer Retry-After is capped too).
        sleep: awaited between attempts (a recorder in tests).
        temperature: sampling temperature.
        max_tokens: completion token limit (None: the provider's default).
        completion_kwargs: extra arguments for `litellm.acompletion` (e.g. `mock_response`).
        prices: model string -> (USD per million input tokens, per million output tokens), winning over
            litellm's cost map.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        completion_kwargs: Mapping[str, Any] | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        if "/" not in model:
            raise ConfigurationError(f"the chat model needs a provider prefix ('openai/gpt-4o-mini'), got {model!r}")
        if max_retries < 0 or timeout_s <= 0 or backoff_base_s < 0 or backoff_cap_s < backoff_base_s:
            raise ConfigurationError("LiteLLMChat needs max_retries >= 0, timeout_s > 0 and 0 <= backoff base <= cap")
        self.model = model
        self._api_key = api_key or None
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._completion_kwargs = dict(completion_kwargs or {})
        self._prices = dict(prices or {})
        self._token_prices: dict[str, tuple[float, float] | None] = {}

    @property
    def provider(self) -> str:
        """The model string's provider prefix ("openai", "anthropic", ...)."""
        return provider_of(self.model)

    def backoff_delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Delay before retry number `retry` (1-based): base * 2**(retry-1), at least Retry-After, capped."""
        delay = self.backoff_base_s * 2.0 ** (retry - 1)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self.backoff_cap_s)

    def worst_case_cost_usd(self, agent: str, prompt_chars: int) -> float | None:
        """The most one attempt may cost for a prompt (turns and tools) of `prompt_chars` characters; None when the
        model has no price (see `LiteLLM.worst_case_cost_usd`)."""
        return worst_case_cost(self.model, prompt_chars, self.max_tokens, self._prices, self._token_prices)

    def redact(self, text: str) -> str:
        """`text` with the API key masked."""
        return text.replace(self._api_key, "***") if self._api_key else text

    async def chat(self, turns: Sequence[ChatTurn], tools: Sequence[ToolSpec], *, as_of: datetime) -> ChatReply:
        """One completion of `turns` with `tools` offered, retrying what can be retried.

        Raises:
            LLMCallFailedError: the last attempt failed, or an error that is not retried occurred.
        """
        messages = to_messages(turns)
        specs = to_tools(tools)
        configured = self._prices.get(self.model)
        tally = _Tally(self.model, price=None if configured is None else (configured[0] / 1e6, configured[1] / 1e6))
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = await self._call(messages, specs)
                tally.add(response)
                reply = from_response(response)
                if not reply[0] and not reply[1]:
                    raise EmptyAnswerError("the model answered neither text nor tool calls")
            except Exception as exc:  # noqa: BLE001 - litellm raises many unrelated types; classified below
                retryable = isinstance(exc, EmptyAnswerError) or is_retryable(exc)
                self._attempt_failed(tally, started, attempt, exc, retryable)
                if not retryable:
                    raise self._failure(tally, attempt, retryable=False) from None
                retry_after = retry_after_seconds(exc)
            else:
                tally.latency_ms += (time.perf_counter() - started) * 1000
                log.info("chat_llm.attempt_ok", model=self.model, attempt=attempt, tool_calls=len(reply[1]),
                         cost_usd=tally.cost_usd)
                return ChatReply(reply[0], reply[1], tally.usage(attempt))
            if attempt < attempts:
                await self._sleep(self.backoff_delay(attempt, retry_after))
        raise self._failure(tally, attempts, retryable=True)

    async def _call(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
        litellm = _litellm()
        optional: dict[str, Any] = {"api_base": self.api_base, "api_key": self._api_key, "max_tokens": self.max_tokens}
        if tools:
            optional |= {"tools": tools, "tool_choice": "auto"}
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": messages, "temperature": self.temperature, "timeout": self.timeout_s,
            "max_retries": 0, "num_retries": 0, "drop_params": True,  # retries are ours
            **{k: v for k, v in optional.items() if v is not None}, **self._completion_kwargs,
        }
        return await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=self.timeout_s * 2 + 1)

    def _attempt_failed(self, tally: _Tally, started: float, attempt: int, error: Exception, retryable: bool) -> None:
        tally.latency_ms += (time.perf_counter() - started) * 1000
        tally.last_error = f"{type(error).__name__}: {self.redact(str(error))[:300]}"
        log.warning("chat_llm.attempt_failed", model=self.model, attempt=attempt, error_type=type(error).__name__,
                    error_kind=getattr(error, "status_code", None), retryable=retryable)

    def _failure(self, tally: _Tally, attempts: int, *, retryable: bool) -> LLMCallFailedError:
        why = "gave up after" if retryable else "failed without retry (not retryable) at attempt"
        message = f"chat: {self.model} {why} {attempts} attempt(s); last error: {tally.last_error}"
        log.error("chat_llm.failed", model=self.model, attempts=attempts, retryable=retryable)
        return LLMCallFailedError(self.redact(message), agent=AGENT, model=self.model, attempts=attempts,
                                  retryable=retryable, usage=tally.usage(attempts))


def to_messages(turns: Sequence[ChatTurn]) -> list[dict[str, Any]]:
    """The OpenAI chat messages of `turns` (what litellm takes for every provider)."""
    messages: list[dict[str, Any]] = []
    for turn in turns:
        if turn.role == "tool":
            messages.append({"role": "tool", "tool_call_id": turn.tool_call_id or "", "content": turn.content})
        elif turn.role == "assistant" and turn.tool_calls:
            messages.append({"role": "assistant", "content": turn.content or None,
                             "tool_calls": [_wire_call(c) for c in turn.tool_calls]})
        else:
            messages.append({"role": turn.role, "content": turn.content})
    return messages


def to_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """OpenAI function tools of `tools`."""
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.parameters}} for t in tools]


def parse_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's arguments from the model's text; `{UNPARSED_ARGUMENTS: text}` when not a JSON object."""
    if isinstance(raw, dict):
        return dict(raw)
    text = "" if raw is None else str(raw)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {UNPARSED_ARGUMENTS: text}
    return value if isinstance(value, dict) else {UNPARSED_ARGUMENTS: text}


def from_response(response: Any) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and tool calls of a litellm response (tool calls without an id get `call_<n>`)."""
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return "", ()
    calls: list[ToolCall] = []
    for n, raw in enumerate(getattr(message, "tool_calls", None) or (), start=1):
        function = _field(raw, "function")
        name = str(_field(function, "name") or "")
        calls.append(ToolCall(id=str(_field(raw, "id") or f"call_{n}"), name=name,
                              arguments=parse_arguments(_field(function, "arguments"))))
    return str(getattr(message, "content", None) or ""), tuple(calls)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _wire_call(call: ToolCall) -> dict[str, Any]:
    unparsed = call.arguments.get(UNPARSED_ARGUMENTS) if set(call.arguments) == {UNPARSED_ARGUMENTS} else None
    arguments = str(unparsed) if unparsed is not None else json.dumps(call.arguments, sort_keys=True, default=str)
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}
