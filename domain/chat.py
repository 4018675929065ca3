"""Values of the chat assistant: tool calls and results, SQL results, event hits and control actions.

The chat reads the system through six tools (SQL, event search, portfolio, performance, control, patterns); every
tool answers a `ToolResult`, which the UI shows as a step with its input and output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

ChatRole = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it: its name, what it does and the JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's (or the router's) request to run one tool.

    Attributes:
        id: the call's id (the model's, or the router's own), echoed in the tool's answer.
        name: which tool.
        arguments: its arguments, as parsed from the model's JSON.
    """

    id: str
    name: str
    arguments: dict[str, Any]


UNPARSED_ARGUMENTS = "_unparsed_arguments"
"""The one key of `ToolCall.arguments` when the model's argument text was not a JSON object: it holds that text.
Such a call is never run; the assistant answers it as bad arguments so the model can try again."""


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One message of a conversation as sent to a tool-calling model.

    Attributes:
        role: system, user, assistant or tool.
        content: the text (for a tool: the tool's answer, serialised).
        tool_calls: the calls an assistant turn asked for.
        tool_call_id: for a tool turn, the call it answers.
    """

    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool answered.

    Attributes:
        name: the tool.
        arguments: what it was asked (shown as the step's input).
        ok: False when the tool refused or failed; `text` then says why.
        text: a short human summary (also what a model reads first).
        data: the structured answer (JSON-serialisable), for the model and the UI.
        columns: for tabular answers, the column names of `rows`.
        rows: for tabular answers, the rows (JSON-serialisable values).
        citations: for answers drawn from the event log, the events used (id, time, cycle id).
    """

    name: str
    arguments: dict[str, Any]
    ok: bool
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    citations: tuple[EventCitation, ...] = ()


@dataclass(frozen=True, slots=True)
class EventCitation:
    """An event an answer used: which, when, and in which cycle."""

    event_id: int
    at: datetime
    cycle_id: str | None
    type: str
    symbol: str | None


@dataclass(frozen=True, slots=True)
class SqlResult:
    """The rows a guarded read-only query returned.

    Attributes:
        sql: the statement that ran (after the guard: comments dropped, LIMIT clamped).
        columns: column names.
        rows: the rows, each cell JSON-serialisable and at most the cell cap long.
        truncated: True when the row cap or a cell cap cut the answer.
    """

    sql: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class EventDocument:
    """An event-log entry as the event search stores it: the text embedded and where it came from.

    Attributes:
        event_id: the event's id in the event log.
        scope: the account scope.
        at: when the event happened.
        type: the event type.
        cycle_id: its cycle, if any.
        symbol: its symbol, if any.
        text: what is embedded (message and the reasoning in the payload, trimmed).
    """

    event_id: int
    scope: str
    at: datetime
    type: str
    cycle_id: str | None
    symbol: str | None
    text: str


@dataclass(frozen=True, slots=True)
class EventHit:
    """One event found by the event search, with its cosine distance to the question."""

    document: EventDocument
    distance: float


class ControlAction(StrEnum):
    """What the chat may do to the system, each only after an explicit confirmation."""

    PAUSE = "pause"
    RESUME = "resume"
    RUN_CYCLE = "run_cycle"
    RUN_EVALS = "run_evals"
    FLATTEN = "flatten"


@dataclass(frozen=True, slots=True)
class PendingAction:
    """A control action proposed and waiting for its confirmation.

    Attributes:
        id: the action id the confirmation must return (unguessable, single use).
        action: what would be done.
        requested_by: who asked (kept in the event log).
        requested_at: when it was proposed.
        expires_at: after this the confirmation is refused.
        reason: why, as the user said it.
    """

    id: str
    action: ControlAction
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    reason: str = ""
