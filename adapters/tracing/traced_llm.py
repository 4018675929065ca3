"""TracedLLM: any LLM whose every call is an "llm" span (what @traceable(run_type="llm") records, on the Tracer port).

The span nests under the span open where the call is made (the gateway's "agent" span), so it holds: the agent,
the cycle id, the provider, the model, prompt and completion tokens, cost, latency, the messages and the parsed
answer. litellm's own LangSmith callback is not used: its runs would not nest under the cycle's trace.
"""

from __future__ import annotations

import time
from typing import Any

from domain.ports.llm import LLM, Decision, LLMRequest, LLMUsage, OutputT
from domain.ports.tracer import Span, Tracer


def usage_metadata(usage: LLMUsage) -> dict[str, object]:
    """Provider, model, tokens and cost of one call, under Quorum's names and the ones LangSmith reads (`ls_*`)."""
    return {"provider": usage.provider, "model": usage.model, "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens, "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            "cost_usd": usage.cost_usd, "cost_known": usage.cost_known, "provider_latency_ms": usage.latency_ms,
            "attempts": usage.attempts, "replayed": usage.replayed, "ls_provider": usage.provider,
            "ls_model_name": usage.model}


def langsmith_usage(usage: LLMUsage) -> dict[str, object]:
    """The `usage_metadata` output LangSmith shows as the run's tokens and cost."""
    return {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens, "total_cost": usage.cost_usd}


class TracedLLM(LLM):
    """Wraps `inner`: the same answers and errors, each call recorded as an "llm <provider>" span.

    Other attributes (`provider`, `models`...) are the inner LLM's, so the gateway still knows a free model.
    """

    def __init__(self, inner: LLM, tracer: Tracer) -> None:
        self._inner = inner
        self._tracer = tracer

    @property
    def inner(self) -> LLM:
        """The wrapped LLM."""
        return self._inner

    @property
    def provider(self) -> str:
        """The inner LLM's provider (its class name when it names none)."""
        return str(getattr(self._inner, "provider", type(self._inner).__name__))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_inner", "_tracer"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    async def complete(self, request: LLMRequest[OutputT]) -> Decision[OutputT]:
        """The inner LLM's answer, inside a span holding the call's metadata (its error when it raised)."""
        if not self._tracer.enabled:
            return await self._inner.complete(request)
        provider = self.provider
        inputs = {"messages": [{"role": m.role, "content": m.content} for m in request.messages],
                  "output_schema": request.output_schema.__name__}
        metadata = {"agent": request.agent, "cycle_id": request.cycle_id, "provider": provider,
                    "ls_provider": provider}
        async with self._tracer.span(f"llm {provider}", run_type="llm", inputs=inputs, metadata=metadata) as span:
            started = time.perf_counter()
            try:
                decision = await self._inner.complete(request)
            except Exception as exc:
                _record_failure(span, exc, started)
                raise
            span.add_metadata({**usage_metadata(decision.usage), "latency_ms": _ms_since(started)})
            span.set_outputs({"output": decision.output.model_dump(mode="json"),
                              "usage_metadata": langsmith_usage(decision.usage)})
            return decision


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _record_failure(span: Span, exc: Exception, started: float) -> None:
    """What a failed call cost (the usage an LLM error carries) and which model failed."""
    paid = getattr(exc, "usage", None)
    found: dict[str, object] = usage_metadata(paid) if isinstance(paid, LLMUsage) else {}
    model = getattr(exc, "model", None)
    if model is not None:
        found["model"] = str(model)
    span.add_metadata({**found, "latency_ms": _ms_since(started)})
