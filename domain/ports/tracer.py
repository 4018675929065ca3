"""Tracer port: nested spans around a cycle, its stages, the agents' calls and the LLM calls.

A span is opened as an async context manager; spans opened inside it (in the same task, or in tasks it
creates, which copy the context) are its children, so one cycle is one trace. An exception leaving a span
marks it failed and goes on. When tracing is off the tracer is a null object that records nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol, runtime_checkable

RunType = Literal["chain", "llm", "tool", "retriever"]
"""What a span stands for: a step of the application (chain), a model call (llm), a chat tool, a recall."""


class Span(Protocol):
    """One open span: what it produced and what is known about it once it ran."""

    def add_metadata(self, metadata: Mapping[str, object]) -> None:
        """Add (or replace) metadata keys, e.g. the tokens and cost known only after an LLM answered."""
        ...

    def set_outputs(self, outputs: Mapping[str, object]) -> None:
        """Record what the span produced (JSON-safe values)."""
        ...

    def set_error(self, error: str) -> None:
        """Mark the span failed with `error` without raising (a failure the caller handled)."""
        ...


@runtime_checkable
class Tracer(Protocol):
    """Opens spans; the spans of one cycle form one trace."""

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded (callers skip building costly outputs when not)."""
        ...

    def span(self, name: str, *, run_type: RunType = "chain", inputs: Mapping[str, object] | None = None,
             metadata: Mapping[str, object] | None = None) -> AbstractAsyncContextManager[Span]:
        """A span named `name`, child of the span open in the current context (a new trace when none is).

        Args:
            name: what the span is, e.g. "cycle scheduled", "decide", "agent signal", "llm offline".
            run_type: what kind of work it stands for.
            inputs: what it was given (JSON-safe values).
            metadata: facts to filter traces by (cycle id, agent, provider, model...).
        """
        ...
