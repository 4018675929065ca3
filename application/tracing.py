"""The tracer used when tracing is off: a null object whose spans record nothing and cost next to nothing."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType

from domain.ports.tracer import RunType, Span, Tracer


class _NullSpan(Span):
    """A span that forgets everything."""

    def add_metadata(self, metadata: Mapping[str, object]) -> None:
        return None

    def set_outputs(self, outputs: Mapping[str, object]) -> None:
        return None

    def set_error(self, error: str) -> None:
        return None


class _NullSpanContext(AbstractAsyncContextManager[Span]):
    """Enters to the null span and lets exceptions through; stateless, so one instance serves every span."""

    async def __aenter__(self) -> Span:
        return NULL_SPAN

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None


class NullTracer(Tracer):
    """Tracing off: no span is recorded, nothing is imported or sent."""

    @property
    def enabled(self) -> bool:
        """Always False."""
        return False

    def span(self, name: str, *, run_type: RunType = "chain", inputs: Mapping[str, object] | None = None,
             metadata: Mapping[str, object] | None = None) -> AbstractAsyncContextManager[Span]:
        """The shared null span context."""
        return _NULL_CONTEXT


NULL_SPAN: Span = _NullSpan()
_NULL_CONTEXT = _NullSpanContext()
NULL_TRACER: Tracer = NullTracer()
"""The tracer of everything built without one."""
