"""LangSmithTracer: the Tracer port on `langsmith.trace`, so nesting follows the context like `@traceable`'s.

A span opened while another is open in the current context (or in the task that created this one: asyncio tasks
copy the context) is its child; a span opened with none open starts a trace, sent to this tracer's client and
project whatever the process's LANGSMITH_* variables say. A `@traceable` function called inside a span nests under
it too. Runs are batched by the client's background thread; `flush` waits until they are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from langsmith import Client
from langsmith.run_helpers import get_current_run_tree, trace, tracing_context
from langsmith.run_trees import RunTree

from domain.ports.tracer import RunType, Span, Tracer

CLOSE_TIMEOUT_S = 10.0
"""How long closing waits for unsent runs (LangSmith unreachable must not hold a shutdown)."""


class LangSmithSpan(Span):
    """A span backed by a LangSmith run tree (sent when the span ends)."""

    def __init__(self, run: RunTree) -> None:
        self.run = run

    def add_metadata(self, metadata: Mapping[str, object]) -> None:
        """Merged into the run's metadata."""
        self.run.add_metadata(dict(metadata))

    def set_outputs(self, outputs: Mapping[str, object]) -> None:
        """Merged into the run's outputs."""
        self.run.add_outputs(dict(outputs))

    def set_error(self, error: str) -> None:
        """The run's error (the run is shown failed)."""
        self.run.error = error


class LangSmithTracer(Tracer):
    """Spans as LangSmith runs, sent by `client` to `project`.

    Args:
        client: the LangSmith client (its endpoint and API key); batching runs in its own thread.
        project: the LangSmith project traces are filed under.
    """

    def __init__(self, client: Client, *, project: str) -> None:
        self._client = client
        self._project = project

    @classmethod
    def connect(cls, *, endpoint: str | None, api_key: str | None, project: str) -> LangSmithTracer:
        """A tracer with its own client on `endpoint` (LangSmith's cloud when None) and `api_key`."""
        return cls(Client(api_url=endpoint, api_key=api_key), project=project)

    @property
    def enabled(self) -> bool:
        """Always True."""
        return True

    @property
    def client(self) -> Client:
        """The LangSmith client runs are sent with."""
        return self._client

    @contextlib.asynccontextmanager
    async def span(self, name: str, *, run_type: RunType = "chain", inputs: Mapping[str, object] | None = None,
                   metadata: Mapping[str, object] | None = None) -> AsyncIterator[Span]:
        """A LangSmith run, child of the run open in this context, else the root of a new trace."""
        with contextlib.ExitStack() as stack:
            if get_current_run_tree() is None:
                stack.enter_context(tracing_context(enabled=True, client=self._client, project_name=self._project))
            async with trace(name, run_type, inputs=dict(inputs or {}), metadata=dict(metadata or {}),
                             client=self._client, project_name=self._project) as run:
                yield LangSmithSpan(run)

    def flush(self) -> None:
        """Block until every finished run has been sent."""
        self._client.flush()

    async def aclose(self) -> None:
        """Send what is left (waiting at most `CLOSE_TIMEOUT_S`) and stop the client's threads."""
        await asyncio.to_thread(self._client.close, CLOSE_TIMEOUT_S)
