"""LiteLLM: the LLM port on litellm (Anthropic, OpenAI, Gemini, local OpenAI-compatible servers).

Each agent has its own litellm model string. Answers are validated against the request's
schema. Timeouts, 429s, 5xx, connection failures and unusable answers (invalid, truncated
or schema-violating JSON, re-asked with the error) are retried with exponential back-off;
401, 400 and a missing key fail at once. Then `LLMCallFailedError` (an `LLMError`) names
the model, the attempts and the last error; the application turns it into a HOLD.

The output schema is sent once (`schema_once`): as the `response_format` when the model takes a
JSON schema there, else in the system prompt. For Anthropic models the system prompt is marked
for prompt caching (`prompt_caching`); OpenAI caches long prompts by itself.

What a call may cost is estimated before it is made (`estimate_cost_usd`): its prompt's tokens counted with
litellm's `token_counter` (the schema of a `response_format` included; with `TOKENIZER_MARGIN` for providers whose
tokenizer litellm only approximates) at the input price, and its completion limit (the request's
`max_output_tokens`, at most `max_tokens`) at the output price. Each retry first asks the request's `budget`
whether the cap covers it (the attempts so far plus the next one's estimate); when it does not, the call stops.

Usage sums every attempt that got an answer: provider is the model string's prefix, cost
comes from the configured price of the model (`prices`, per million tokens; cached prompt tokens
at `cache_prices`) or litellm's cost map (cached tokens at its cached rates; 0.0 and a
`llm.cost_unknown` warning for a model neither prices; start-up refuses such a paid model),
latency is time spent waiting on the provider (back-off sleeps excluded).
litellm is imported on the first call (it takes seconds) with its packaged cost map. API
keys are passed per call, never logged and masked in error messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from adapters.llm.json_output import (
    InvalidOutputError,
    ResponseFormatMode,
    parse_output,
    repair_message,
    response_format,
    schema_messages,
    with_schema_instructions,
)
from adapters.llm.price_table import token_prices
from domain.errors import ConfigurationError, LLMError
from domain.ports.llm import LLM, AgentName, Decision, LLMRequest, LLMUsage, OutputT

log = structlog.get_logger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ResponseFormatChoice = Literal["auto", "json_schema", "json_object", "none"]
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# litellm reports a missing key of some providers as a 500; retrying cannot help.
_CONFIGURATION_HINTS = ("missing credentials", "api_key client option must be set", "missing api key",
                        "api key not found", "llm provider not provided")
_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(LLMUsage))
_MAX_RAW_IN_REPAIR = 4000
_UNPRICED_WARNED: set[str] = set()
CHARS_PER_TOKEN_WORST = 3
PROMPT_OVERHEAD_TOKENS = 64
WORST_CASE_OUTPUT_TOKENS = 4096
"""The completion reserved for a call without `max_tokens`."""
TOKENIZER_MARGIN = 1.25
"""litellm counts the tokens of models whose tokenizer it does not ship (Anthropic's, Gemini's) with OpenAI's; a
prompt may have up to this many times more of them."""
EXACT_TOKENIZERS = frozenset({"openai", "azure"})
NO_BUDGET = "the daily LLM cap cannot cover another attempt"
CACHE_WRITE_MARKUP = 1.25
"""A prompt-cache write costs this times the input price (Anthropic's 5-minute cache) unless priced."""
CACHE_CONTROL = {"type": "ephemeral"}


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


class LLMCallFailedError(LLMError):
    """A call that failed for good.

    Attributes:
        agent: the agent that asked.
        model: the litellm model string.
        attempts: how many attempts were made.
        retryable: whether the last error was of a kind that is retried (False for 401/400).
        usage: tokens and cost of the attempts that got an answer (unusable answers cost money too).
    """

    def __init__(self, message: str, *, agent: str, model: str, attempts: int, retryable: bool,
                 usage: LLMUsage) -> None:
        super().__init__(message)
        self.agent = agent
        self.model = model
        self.attempts = attempts
        self.retryable = retryable
        self.usage = usage


@dataclass
class _Tally:
    """Tokens, cost and latency summed over the attempts of one call (unusable answers are paid for too)."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True
    latency_ms: float = 0.0
    last_error: str = ""
    price: tuple[float, float] | None = None  # configured USD per input and output token
    cache_price: tuple[float, float] | None = None  # configured USD per cache-read and cache-write token
    cached_tokens: int = 0

    def add(self, response: Any) -> None:
        usage = getattr(response, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        completion = int(getattr(usage, "completion_tokens", 0) or 0)
        read, written = cache_tokens(usage)
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.cached_tokens += read
        cost = (configured_cost(self.price, self.cache_price, prompt, completion, read, written)
                if self.price is not None else cost_usd(self.model, prompt, completion, usage))
        self.cost_known = self.cost_known and cost is not None
        self.cost_usd += cost or 0.0

    def usage(self, attempts: int) -> LLMUsage:
        if not self.cost_known and self.model not in _UNPRICED_WARNED:
            _UNPRICED_WARNED.add(self.model)
            log.warning("llm.cost_unknown", model=self.model, hint="not in litellm's cost map; cost recorded as 0")
        values: dict[str, Any] = {
            "provider": provider_of(self.model), "model": self.model, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 3), "attempts": attempts, "cost_known": self.cost_known,
            "cached_prompt_tokens": self.cached_tokens,
        }
        # `cost_known` is passed once LLMUsage has such a field.
        return LLMUsage(**{k: v for k, v in values.items() if k in _USAGE_FIELDS})


class LiteLLM(LLM):
    """The LLM port on `litellm.acompletion`, one model per agent.

    Args:
        models: agent name -> litellm model string with a provider prefix.
        api_keys: provider ("openai", "anthropic", "gemini", ...) -> API key; a provider
            without a key falls back to litellm's environment variables.
        api_base: base URL for OpenAI-compatible local servers (e.g. http://127.0.0.1:8000/v1).
        timeout_s: timeout of one attempt.
        max_retries: retries after the first attempt (so at most `max_retries + 1` attempts).
        backoff_base_s: delay before the first retry; doubles at each retry.
        backoff_cap_s: longest delay (a longer Retry-After is capped to it as well).
        sleep: awaited between attempts (inject a recorder in tests).
        temperature: sampling temperature (0 for reproducible answers).
        max_tokens: completion token limit, None for the provider default.
        response_format: "auto" (json_schema where litellm says the model supports it,
            else json_object where the provider accepts `response_format`), "json_schema",
            "json_object" or "none".
        completion_kwargs: extra arguments for `litellm.acompletion` (e.g. `mock_response`).
        prices: model string -> (USD per million input tokens, per million output tokens), winning over
            litellm's cost map.
        cache_prices: model string -> (USD per million cached prompt tokens read, per million written), each
            None for the default: a read at the input price, a write at 1.25 times it; used with `prices`.
        schema_once: send the output schema once (False: in the system prompt and as the response format,
            the old behaviour).
        prompt_caching: mark the system prompt of Anthropic models for prompt caching.
    """

    def __init__(
        self,
        models: Mapping[str, str],
        *,
        api_keys: Mapping[str, str | None] | None = None,
        api_base: str | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 3,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 30.0,
        sleep: Sleep = asyncio.sleep,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        response_format: ResponseFormatChoice = "auto",
        completion_kwargs: Mapping[str, Any] | None = None,
        prices: Mapping[str, tuple[float, float]] | None = None,
        cache_prices: Mapping[str, tuple[float | None, float | None]] | None = None,
        schema_once: bool = True,
        prompt_caching: bool = True,
    ) -> None:
        bad = {agent: m for agent, m in models.items() if "/" not in m}
        if not models or bad:
            raise ConfigurationError(f"LiteLLM needs models with a provider prefix ('openai/gpt-4o-mini'): {bad}")
        if max_retries < 0 or timeout_s <= 0 or backoff_base_s < 0 or backoff_cap_s < backoff_base_s:
            raise ConfigurationError("LiteLLM needs max_retries >= 0, timeout_s > 0 and 0 <= backoff base <= cap")
        self.models = dict(models)
        self._api_keys = {p: k for p, k in (api_keys or {}).items() if k}
        self.api_base = api_base
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._sleep = sleep
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._response_format = response_format
        self._completion_kwargs = dict(completion_kwargs or {})
        self._format_modes: dict[str, ResponseFormatMode] = {}
        self._prices = dict(prices or {})
        self._cache_prices = dict(cache_prices or {})
        self.schema_once = schema_once
        self.prompt_caching = prompt_caching
        self._token_prices: dict[str, tuple[float, float] | None] = {}

    @property
    def provider(self) -> str:
        """The provider of every model, or "litellm" when agents use several providers."""
        providers = {provider_of(m) for m in self.models.values()}
        return providers.pop() if len(providers) == 1 else "litellm"

    def model_for(self, agent: AgentName | str) -> str:
        """The model string of `agent` ("default" serves agents not listed); ConfigurationError if none."""
        model = self.models.get(agent) or self.models.get("default")
        if model is None:
            raise ConfigurationError(f"no LLM model configured for the {agent} agent")
        return model

    def backoff_delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Delay before retry number `retry` (1-based): base * 2**(retry-1), at least Retry-After, capped."""
        delay = self.backoff_base_s * 2.0 ** (retry - 1)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self.backoff_cap_s)

    def configured_price(self, model: str) -> tuple[float, float] | None:
        """The configured USD per input and output token of `model`, if any."""
        per_million = self._prices.get(model)
        return None if per_million is None else (per_million[0] / 1e6, per_million[1] / 1e6)

    def configured_cache_price(self, model: str) -> tuple[float, float] | None:
        """The USD per cached prompt token read and written of a model with a configured price."""
        price = self.configured_price(model)
        if price is None:
            return None
        read, write = self._cache_prices.get(model, (None, None))
        return (price[0] if read is None else read / 1e6,
                price[0] * CACHE_WRITE_MARKUP if write is None else write / 1e6)

    def worst_case_cost_usd(self, agent: str, prompt_chars: int) -> float | None:
        """The most one attempt of `agent` may cost: a prompt of `prompt_chars` characters (at 3 characters a token,
        an overestimate for English and JSON) and `max_tokens` (else `WORST_CASE_OUTPUT_TOKENS`) of completion, at
        the model's price; None when the model has no price."""
        return worst_case_cost(self.model_for(agent), prompt_chars, self.max_tokens, self._prices,
                               self._token_prices)

    def output_limit(self, request: LLMRequest[Any]) -> int:
        """The completion token limit of `request`: its own, at most `max_tokens` (`WORST_CASE_OUTPUT_TOKENS`
        when neither is set)."""
        limits = [n for n in (self.max_tokens, request.max_output_tokens) if n]
        return min(limits) if limits else WORST_CASE_OUTPUT_TOKENS

    def estimate_cost_usd(self, request: LLMRequest[Any]) -> float | None:
        """The most one attempt of `request` may cost: the tokens of the messages sent (counted by litellm) at the
        model's input price and `output_limit` at its output price; None when the model has no price."""
        model = self.model_for(request.agent)
        mode = self._format_mode(_litellm(), model, provider_of(model))
        return self._attempt_cost(model, self.messages_for(model, request, mode), request, mode)

    def _attempt_cost(self, model: str, messages: list[dict[str, Any]], request: LLMRequest[Any],
                      mode: ResponseFormatMode) -> float | None:
        if model not in self._token_prices:
            self._token_prices[model] = token_prices(model, self._prices)
        per_token = self._token_prices[model]
        if per_token is None:
            return None
        input_price = per_token[0]
        if self.prompt_caching and caches_with_control(model):  # a prompt-cache write costs more than the input
            cache = self.configured_cache_price(model)
            input_price = max(input_price, cache[1] if cache else input_price * CACHE_WRITE_MARKUP)
        schema = request.output_schema if mode == "json_schema" else None
        return prompt_tokens(model, messages, schema) * input_price + self.output_limit(request) * per_token[1]

    async def _may_retry(self, request: LLMRequest[Any], model: str, messages: list[dict[str, Any]],
                         mode: ResponseFormatMode, tally: _Tally) -> bool:
        if request.budget is None:
            return True
        return await request.budget.another_attempt(tally.cost_usd,
                                                    self._attempt_cost(model, messages, request, mode) or 0.0)

    def redact(self, text: str) -> str:
        """`text` with every API key this adapter holds masked."""
        for key in self._api_keys.values():
            text = text.replace(key, "***")
        return text

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """Ask the agent's model and validate the answer, retrying what can be retried.

        Raises:
            LLMCallFailedError: the last attempt failed, or an error that is not retried occurred.
            ConfigurationError: no model for the agent.
        """
        model = self.model_for(request.agent)
        mode = self._format_mode(_litellm(), model, provider_of(model))
        base_messages = messages = self.messages_for(model, request, mode)
        tally = _Tally(model, price=self.configured_price(model), cache_price=self.configured_cache_price(model))
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                response = await self._call(model, messages, response_format(request.output_schema, mode),
                                            self.output_limit(request))
            except Exception as exc:  # noqa: BLE001 - litellm raises many unrelated types; classified below
                retryable = is_retryable(exc)
                self._attempt_failed(request.agent, tally, started, attempt, exc, retryable)
                if not retryable:
                    raise self._failure(request.agent, tally, attempt, retryable=False) from None
                retry_after = retry_after_seconds(exc)
            else:
                text, finish_reason = _content(response)
                tally.add(response)
                try:
                    output = parse_output(text, request.output_schema)
                except InvalidOutputError as exc:
                    if finish_reason == "length":
                        exc = InvalidOutputError(exc.kind, f"{exc.detail} (the model hit its token limit)")
                    self._attempt_failed(request.agent, tally, started, attempt, exc, True)
                    messages = [*base_messages, {"role": "assistant", "content": text[:_MAX_RAW_IN_REPAIR]},
                                {"role": "user", "content": repair_message(exc)}]
                else:
                    latency_ms = (time.perf_counter() - started) * 1000
                    tally.latency_ms += latency_ms
                    log.info("llm.attempt_ok", agent=request.agent, model=model, attempt=attempt,
                             latency_ms=round(latency_ms, 1), cost_usd=tally.cost_usd)
                    return Decision(output, tally.usage(attempt), raw=text)
            if attempt < attempts:
                if not await self._may_retry(request, model, messages, mode, tally):
                    raise self._failure(request.agent, tally, attempt, retryable=False,
                                        why=f"stopped ({NO_BUDGET}) after")
                await self._sleep(self.backoff_delay(attempt, retry_after))
        raise self._failure(request.agent, tally, attempts, retryable=True)

    def messages_for(self, model: str, request: LLMRequest[OutputT], mode: ResponseFormatMode) -> list[dict[str, Any]]:
        """The chat messages sent for `request`: the schema once (or, without `schema_once`, as before: in the
        system prompt whatever the response format carries), the system prompt marked for caching on Anthropic."""
        messages: list[dict[str, Any]]
        if self.schema_once:
            messages = list(schema_messages(request.messages, request.output_schema,
                                            in_response_format=mode == "json_schema"))
        else:
            messages = list(with_schema_instructions(request.messages, request.output_schema))
        if self.prompt_caching and caches_with_control(model):
            messages = [{**m, "content": [{"type": "text", "text": m["content"], "cache_control": CACHE_CONTROL}]}
                        if m["role"] == "system" and isinstance(m["content"], str) else m for m in messages]
        return messages

    async def _call(self, model: str, messages: list[dict[str, Any]], fmt: dict[str, Any] | None,
                    max_tokens: int | None = None) -> Any:
        litellm = _litellm()
        provider = provider_of(model)
        optional = {"api_base": self.api_base, "api_key": self._api_keys.get(provider),
                    "max_tokens": max_tokens or self.max_tokens, "response_format": fmt}
        kwargs: dict[str, Any] = {
            "model": model, "messages": messages, "temperature": self.temperature, "timeout": self.timeout_s,
            "max_retries": 0, "num_retries": 0, "drop_params": True,  # retries are ours
            **{k: v for k, v in optional.items() if v is not None}, **self._completion_kwargs,
        }
        # litellm enforces `timeout` on the HTTP call; this guards providers whose client ignores it.
        return await asyncio.wait_for(litellm.acompletion(**kwargs), timeout=self.timeout_s * 2 + 1)

    def _format_mode(self, litellm: Any, model: str, provider: str) -> ResponseFormatMode:
        if self._response_format != "auto":
            return self._response_format
        if model not in self._format_modes:
            mode: ResponseFormatMode = "none"
            try:
                bare = model.split("/", 1)[1]
                params = litellm.get_supported_openai_params(model=bare, custom_llm_provider=provider) or []
                if "response_format" in params:
                    mode = "json_schema" if litellm.supports_response_schema(model=model) else "json_object"
            except Exception as exc:  # noqa: BLE001 - an unknown model just gets no response_format
                log.debug("llm.response_format_unknown", model=model, error=type(exc).__name__)
            self._format_modes[model] = mode
        return self._format_modes[model]

    def _attempt_failed(self, agent: str, tally: _Tally, started: float, attempt: int, error: Exception,
                        retryable: bool) -> None:
        latency_ms = (time.perf_counter() - started) * 1000
        tally.latency_ms += latency_ms
        tally.last_error = f"{type(error).__name__}: {self.redact(str(error))[:300]}"
        kind = getattr(error, "kind", None) or getattr(error, "status_code", None)
        log.warning("llm.attempt_failed", agent=agent, model=tally.model, attempt=attempt,
                    latency_ms=round(latency_ms, 1), error_type=type(error).__name__, error_kind=kind,
                    retryable=retryable)

    def _failure(self, agent: str, tally: _Tally, attempts: int, *, retryable: bool,
                 why: str | None = None) -> LLMCallFailedError:
        why = why or ("gave up after" if retryable else "failed without retry (not retryable) at attempt")
        message = f"{agent} agent: {tally.model} {why} {attempts} attempt(s); last error: {tally.last_error}"
        log.error("llm.failed", agent=agent, model=tally.model, attempts=attempts, retryable=retryable)
        return LLMCallFailedError(self.redact(message), agent=agent, model=tally.model, attempts=attempts,
                                  retryable=retryable, usage=tally.usage(attempts))


def worst_case_cost(model: str, prompt_chars: int, max_tokens: int | None,
                    prices: Mapping[str, tuple[float, float]],
                    cache: dict[str, tuple[float, float] | None]) -> float | None:
    """The most one attempt on `model` may cost (see `LiteLLM.worst_case_cost_usd`); `cache` keeps each model's
    per-token prices."""
    if model not in cache:
        cache[model] = token_prices(model, prices)
    per_token = cache[model]
    if per_token is None:
        return None
    prompt_tokens = prompt_chars // CHARS_PER_TOKEN_WORST + PROMPT_OVERHEAD_TOKENS
    return prompt_tokens * per_token[0] + (max_tokens or WORST_CASE_OUTPUT_TOKENS) * per_token[1]


def prompt_tokens(model: str, messages: list[dict[str, Any]], schema: type[Any] | None = None) -> int:
    """The prompt tokens of `messages` (and of `schema`, sent as the response format) by litellm's
    `token_counter`, times `TOKENIZER_MARGIN` for a provider litellm counts with another tokenizer."""
    litellm = _litellm()
    plain = [{"role": m["role"], "content": _text(m["content"])} for m in messages]
    count = int(litellm.token_counter(model=model, messages=plain))
    if schema is not None:
        count += int(litellm.token_counter(model=model, text=json.dumps(schema.model_json_schema())))
    return count if provider_of(model) in EXACT_TOKENIZERS else math.ceil(count * TOKENIZER_MARGIN)


def _text(content: Any) -> str:
    """A message's text (the parts of one marked for prompt caching joined)."""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))


def caches_with_control(model: str) -> bool:
    """Whether `model` caches a prompt prefix only where it is marked with `cache_control` (Anthropic's Claude,
    also through Bedrock and Vertex); OpenAI and Gemini cache long prefixes by themselves."""
    return provider_of(model) == "anthropic" or "claude" in model.lower()


def cache_tokens(usage: Any) -> tuple[int, int]:
    """Prompt tokens read from and written to the provider's prompt cache, as litellm reports them (OpenAI:
    `prompt_tokens_details.cached_tokens`; Anthropic: `cache_read_input_tokens`, `cache_creation_input_tokens`)."""
    details = getattr(usage, "prompt_tokens_details", None)
    read = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", None) or 0
    written = (getattr(usage, "cache_creation_input_tokens", None) or getattr(details, "cache_creation_tokens", None)
               or 0)
    return _count(read), _count(written)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def configured_cost(price: tuple[float, float], cache_price: tuple[float, float] | None, prompt: int,
                    completion: int, cache_read: int, cache_written: int) -> float:
    """The cost of one answer at configured per-token prices; the prompt's cached tokens (counted in `prompt`)
    at the cache prices."""
    if cache_price is None:
        return prompt * price[0] + completion * price[1]
    read, written = min(cache_read, prompt), min(cache_written, max(0, prompt - cache_read))
    fresh = prompt - read - written
    return fresh * price[0] + read * cache_price[0] + written * cache_price[1] + completion * price[1]


def provider_of(model: str) -> str:
    """The provider prefix of a litellm model string ("openai/gpt-4o-mini" -> "openai")."""
    return model.split("/", 1)[0] if "/" in model else "unknown"


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, connection failures, 408/409/425/429 and 5xx are worth another attempt; the rest is not.

    A missing API key is never retried, whatever status litellm gives it.
    """
    if isinstance(exc, asyncio.TimeoutError | TimeoutError | ConnectionError):
        return True
    if any(hint in str(exc).lower() for hint in _CONFIGURATION_HINTS):
        return False
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in _RETRYABLE_STATUS or status >= 500):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"APITimeoutError", "Timeout", "APIConnectionError", "ServiceUnavailableError",
                         "InternalServerError", "RateLimitError", "BadGatewayError"})


def retry_after_seconds(exc: BaseException) -> float | None:
    """The Retry-After (seconds) of a 429/503, when the provider sent one."""
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None),
                                                                        "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, usage: Any = None) -> float | None:
    """Cost of one call from litellm's cost map (cached-token prices included); None when the model is not in it."""
    litellm = _litellm()
    try:
        prompt_cost, completion_cost = litellm.cost_per_token(
            model=model, custom_llm_provider=provider_of(model), prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, usage_object=usage)
    except Exception:  # noqa: BLE001 - litellm raises several types for a model it cannot price
        return None
    return float(prompt_cost) + float(completion_cost)


def _content(response: Any) -> tuple[str, str | None]:
    try:
        choice = response.choices[0]
    except (AttributeError, IndexError, TypeError):
        return "", None
    message = getattr(choice, "message", None)
    return str(getattr(message, "content", None) or ""), getattr(choice, "finish_reason", None)
