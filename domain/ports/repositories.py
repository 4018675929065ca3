"""Repositories of the trading core. Every method works inside the caller's unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, Order, OrderStatus, Position
from domain.storage import json_document, utc
from domain.trading_state import ControlState, TradingState


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Filters for reading the event log (newest first)."""

    scope: str
    types: tuple[EventType, ...] = ()
    symbol: str | None = None
    cycle_id: str | None = None
    min_severity: Severity | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


def check_after(after_id: int, limit: int) -> None:
    """Raise `ValueError` unless `after_id` is not negative and `limit` is positive (`EventRepository.after`)."""
    if after_id < 0 or limit <= 0:
        raise ValueError(f"after_id must not be negative and limit must be positive, got {after_id} and {limit}")


class EventRepository(Protocol):
    """The append-only event log."""

    async def add(self, events: Sequence[Event]) -> None:
        """Append events."""
        ...

    async def query(self, q: EventQuery) -> list[Event]:
        """Events matching `q`, newest first."""
        ...

    async def count(self, q: EventQuery) -> int:
        """How many events match `q` (ignoring limit and offset)."""
        ...

    async def after(self, scope: str, after_id: int, *, limit: int) -> list[Event]:
        """Events of `scope` whose id is above `after_id`, in id order (oldest first), at most `limit`.

        Raises:
            ValueError: `limit` is not positive or `after_id` is negative.
        """
        ...


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """An order as Quorum recorded it."""

    order: Order
    scope: str
    cycle_id: str | None
    shadow: bool = False


class OrderRepository(Protocol):
    """Orders Quorum decided and submitted."""

    async def upsert(self, record: OrderRecord) -> None:
        """Insert or update by client order id."""
        ...

    async def get(self, client_order_id: str) -> OrderRecord | None:
        """The order with this client order id."""
        ...

    async def list(self, scope: str, *, status: Sequence[OrderStatus] = (), limit: int = 1000) -> list[OrderRecord]:
        """Orders of `scope`, newest first, optionally of some statuses only."""
        ...


@dataclass(frozen=True, slots=True)
class FillRecord:
    """A fill as Quorum recorded it."""

    fill: Fill
    scope: str
    cycle_id: str | None
    shadow: bool = False


class FillRepository(Protocol):
    """Executions."""

    async def add(self, records: Sequence[FillRecord]) -> None:
        """Record fills; a fill already recorded (same order, time, qty, price) is ignored."""
        ...

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None,
        shadow: bool | None = False, limit: int = 100_000,
    ) -> list[FillRecord]:
        """Fills of `scope` with since <= at < until, oldest first.

        `shadow`: False = real fills only, True = shadow fills only, None = both.
        """
        ...


class PositionRepository(Protocol):
    """Quorum's mirror of broker positions, with the stops Quorum enforces itself."""

    async def replace_all(self, scope: str, positions: Sequence[Position]) -> None:
        """Make the stored positions exactly `positions`."""
        ...

    async def list(self, scope: str) -> list[Position]:
        """Stored positions."""
        ...


@dataclass(frozen=True, slots=True)
class EquityPoint:
    """Account value at a moment."""

    at: datetime
    equity: Decimal
    cash: Decimal
    exposure: Decimal
    net_deposits: Decimal = Decimal(0)


class EquityRepository(Protocol):
    """Equity history."""

    async def add(self, scope: str, point: EquityPoint) -> None:
        """Add a point; a second point at the same time replaces the first."""
        ...

    async def list(
        self, scope: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[EquityPoint]:
        """Points with since <= at < until, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """One trading cycle."""

    id: str
    scope: str
    kind: str
    as_of: datetime
    status: str
    symbol: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


class CycleRepository(Protocol):
    """Cycles and their outcome."""

    async def upsert(self, record: CycleRecord) -> None:
        """Insert or update by id."""
        ...

    async def get(self, cycle_id: str) -> CycleRecord | None:
        """The cycle with this id."""
        ...

    async def last(self, scope: str) -> CycleRecord | None:
        """The most recent cycle of `scope`."""
        ...


@dataclass(frozen=True, slots=True)
class StateDocument:
    """A stored state document with its key and when it was last saved."""

    scope: str
    name: str
    value: dict[str, Any]
    saved_at: datetime


class StateRepository(Protocol):
    """Small JSON documents keyed by (scope, name): breaker state, trading pause, settings snapshots.

    Values must be JSON-compatible and come back as JSON (Decimals and datetimes as strings).
    """

    async def load(self, scope: str, name: str) -> dict[str, Any] | None:
        """The stored document, or None."""
        ...

    async def latest(self, name: str, *, scope_prefix: str = "") -> StateDocument | None:
        """The document called `name` saved last (the `at` of its latest save) among the scopes starting with
        `scope_prefix` (literally: no wildcards); on a tie, the one of the greatest scope. None when there is none.
        """
        ...

    async def save(self, scope: str, name: str, value: dict[str, Any], *, at: datetime) -> None:
        """Store (replace) a document."""
        ...


class TradingStateRepository(Protocol):
    """Quorum's typed trading state per scope (see `domain.trading_state`)."""

    async def load(self, scope: str) -> TradingState:
        """The stored state; an empty `TradingState()` when nothing was stored yet."""
        ...

    async def save(self, scope: str, state: TradingState, *, at: datetime) -> None:
        """Replace the stored state of `scope` with `state` (open trades, pending entries and cooldowns not in
        `state` are deleted), except the pause switch: once stored, `control` changes only through
        `set_control`, so a cycle that loaded the state before a pause cannot undo the pause by saving."""
        ...

    async def set_control(self, scope: str, control: ControlState, *, at: datetime) -> None:
        """Store the pause switch of `scope` and nothing else (a cycle's trades saved meanwhile stay)."""
        ...


@dataclass(frozen=True, slots=True)
class LLMCallRecord:
    """One LLM call with its cost."""

    at: datetime
    scope: str
    agent: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    ok: bool
    cycle_id: str | None = None
    error: str | None = None
    request_hash: str | None = None


class LLMCallRepository(Protocol):
    """Cost and latency of every LLM call."""

    async def add(self, record: LLMCallRecord) -> None:
        """Record a call."""
        ...

    async def spend(self, scope: str, *, since: datetime, until: datetime) -> float:
        """USD spent in [since, until)."""
        ...

    async def list(self, scope: str, *, limit: int = 1000) -> list[LLMCallRecord]:
        """Calls, newest first."""
        ...


EVAL_RUN_KINDS = ("nightly", "ci", "manual", "baseline")
"""Why an eval run was made: the nightly job, CI, a request (API or CLI), or the baseline of its key."""
EVAL_VERDICTS = ("ok", "noise", "regression", "refused", "no_baseline")
"""The regression gate's verdict on a run (see `application.evals.gate`); no_baseline: nothing to compare with."""


@dataclass(frozen=True, slots=True)
class EvalRunRecord:
    """One stored eval run.

    Attributes:
        id: unique id.
        scope: whose run.
        at: when it ran (timezone-aware).
        kind: one of `EVAL_RUN_KINDS`.
        baseline_key: the hash of what the result depends on (`application.evals.baseline`).
        llm: what answered ("offline", a model, or "agent=model, ...").
        document: the run's JSON document (`quorum evals run --json`); {} when listed without documents.
        verdict: one of `EVAL_VERDICTS`.
        git_sha: the code's commit, when known.
        comparison: the gate's report against the baseline (figures per suite), {} when there was none.
    """

    id: str
    scope: str
    at: datetime
    kind: str
    baseline_key: str
    llm: str
    document: dict[str, Any]
    verdict: str
    git_sha: str | None = None
    comparison: dict[str, Any] = field(default_factory=dict)


def stored_eval_run(run: EvalRunRecord) -> EvalRunRecord:
    """`run` as every repository stores it: time in UTC, documents as JSON (part of the repository contract).

    Raises:
        ValueError: an unknown kind or verdict, an empty id or key, a naive time, or a document that is not JSON
            (NaN included).
    """
    if run.kind not in EVAL_RUN_KINDS:
        raise ValueError(f"unknown eval run kind {run.kind!r}; use one of {', '.join(EVAL_RUN_KINDS)}")
    if run.verdict not in EVAL_VERDICTS:
        raise ValueError(f"unknown eval verdict {run.verdict!r}; use one of {', '.join(EVAL_VERDICTS)}")
    if not run.id or not run.baseline_key:
        raise ValueError("an eval run needs an id and a baseline key")
    try:
        document = json_document(run.document, what="eval run document")
        comparison = json_document(run.comparison, what="eval run comparison")
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    return replace(run, at=utc(run.at, what="eval run time"), document=document, comparison=comparison)


class EvalRunRepository(Protocol):
    """Eval runs and their verdicts."""

    async def add(self, run: EvalRunRecord) -> None:
        """Store a run.

        Raises:
            ValueError: a run with this id is already stored, or the kind, verdict or a document is invalid.
        """
        ...

    async def get(self, run_id: str) -> EvalRunRecord | None:
        """The run with this id, with its document."""
        ...

    async def list(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None, limit: int = 50,
                   offset: int = 0, documents: bool = True) -> list[EvalRunRecord]:
        """Runs of `scope`, newest first, optionally of one kind and one baseline key.

        `documents=False` leaves every `document` empty (a listing that does not need them).
        """
        ...

    async def count(self, scope: str, *, kind: str | None = None, baseline_key: str | None = None) -> int:
        """How many runs match (ignoring limit and offset)."""
        ...
