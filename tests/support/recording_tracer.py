"""A Tracer that keeps its spans in memory, nested by context like LangSmith's (tasks copy the context)."""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.ports.tracer import RunType, Span, Tracer

_CURRENT: contextvars.ContextVar[int | None] = contextvars.ContextVar("recording_tracer_span", default=None)
_IDS = itertools.count(1)


@dataclass
class RecordedSpan(Span):
    """One span as recorded: its parent's id (None for a root), what it was given and what it set."""

    id: int
    name: str
    run_type: str
    parent: int | None
    inputs: dict[str, Any]
    metadata: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    closed: bool = False

    def add_metadata(self, metadata: Mapping[str, object]) -> None:
        self.metadata.update(metadata)

    def set_outputs(self, outputs: Mapping[str, object]) -> None:
        self.outputs.update(outputs)

    def set_error(self, error: str) -> None:
        self.error = error


class RecordingTracer(Tracer):
    """Records every span; an exception leaving a span is its error."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    @property
    def enabled(self) -> bool:
        return True

    @contextlib.asynccontextmanager
    async def span(self, name: str, *, run_type: RunType = "chain", inputs: Mapping[str, object] | None = None,
                   metadata: Mapping[str, object] | None = None) -> AsyncIterator[Span]:
        recorded = RecordedSpan(next(_IDS), name, run_type, _CURRENT.get(), dict(inputs or {}), dict(metadata or {}))
        self.spans.append(recorded)
        token = _CURRENT.set(recorded.id)
        try:
            yield recorded
        except BaseException as exc:
            recorded.error = recorded.error or f"{type(exc).__name__}: {exc}"
            raise
        finally:
            recorded.closed = True
            _CURRENT.reset(token)

    def named(self, prefix: str) -> list[RecordedSpan]:
        """The spans whose name starts with `prefix`, in the order they were opened."""
        return [s for s in self.spans if s.name.startswith(prefix)]

    def children(self, parent: RecordedSpan) -> list[RecordedSpan]:
        """The spans opened directly under `parent`, in order."""
        return [s for s in self.spans if s.parent == parent.id]
