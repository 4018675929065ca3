"""The eval suites: which agent a dataset row is put to, with which schema, and what its answer says.

A row's `context` is the agent's own typed context, so the request is the production one: `application.agents`
renders it (`render`: the agent's system prompt with its output schema, the context as JSON) exactly as the
trading cycle does. An answer that does not name the row's symbol is invalid: it counts as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel

from domain.agents.schemas import RiskBatch, SignalBatch, ValidatorBatch
from domain.evals.rows import RiskRow, SignalRow, TrapRow, ValidatorRow
from domain.ports.llm import AgentName

SuiteName = Literal["signal", "traps", "risk", "validator"]
SUITES: tuple[SuiteName, ...] = ("signal", "traps", "risk", "validator")
TWINNED: tuple[SuiteName, ...] = ("signal", "risk", "validator")
"""Suites whose rows have a named twin (`<suite>_named`): the memorisation probe."""
EvalRow = SignalRow | TrapRow | RiskRow | ValidatorRow
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""The request time of an anonymised row ("day 0" has no date): a fixed placeholder, never the wall clock."""


@dataclass(frozen=True, slots=True)
class Suite:
    """How a suite asks its agent.

    Attributes:
        name: the suite.
        agent: the agent asked.
        schema: the agent's output schema.
    """

    name: SuiteName
    agent: AgentName
    schema: type[BaseModel]


SPECS: dict[SuiteName, Suite] = {
    "signal": Suite("signal", "signal", SignalBatch),
    "traps": Suite("traps", "signal", SignalBatch),
    "risk": Suite("risk", "risk", RiskBatch),
    "validator": Suite("validator", "validator", ValidatorBatch),
}


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer of the agent to one row (one repeat).

    Attributes:
        row_id: the row.
        repeat: which repeat (0-based).
        error: why the answer is a failure (the call failed, was refused, or did not answer the row); None if ok.
        action: signal and traps: BUY, SELL or HOLD.
        confidence: signal and traps: the stated confidence in the action.
        position_pct: risk: the proposed position as a share of equity.
        stop_pct: risk: the proposed stop distance.
        take_profit_pct: risk: the proposed take-profit distance (None: none).
        approve: validator: the verdict.
        latency_ms: time spent in the LLM calls (as the LLM reported it; a replay reports the recorded one).
        tokens: prompt and completion tokens.
        cost_usd: what the calls cost.
        reasoning: the agent's stated reasoning about the row (None for a failure).
        completion_tokens: the completion part of `tokens`.
    """

    row_id: str
    repeat: int
    error: str | None = None
    action: str | None = None
    confidence: float | None = None
    position_pct: float | None = None
    stop_pct: float | None = None
    take_profit_pct: float | None = None
    approve: bool | None = None
    latency_ms: float = 0.0
    tokens: int = 0
    cost_usd: float = 0.0
    reasoning: str | None = None
    completion_tokens: int = 0

    @property
    def ok(self) -> bool:
        """The agent gave a valid answer to the row."""
        return self.error is None


def request_time(row: EvalRow) -> datetime:
    """The row's own `as_of` (named twins carry a date); `UNDATED` for an anonymised "day 0"."""
    try:
        at = datetime.fromisoformat(row.context.as_of)
    except ValueError:
        return UNDATED
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def asked_symbol(row: EvalRow) -> str:
    """The symbol the row asks about (every dataset row holds one)."""
    if isinstance(row, RiskRow | ValidatorRow):
        return row.context.candidates[0].symbol.upper()
    return row.context.symbols[0].symbol.upper()


def read_answer(row: EvalRow, output: BaseModel, repeat: int) -> Answer:
    """The fields of the agent's answer about the row's symbol; a failure when the answer left it out."""
    symbol = asked_symbol(row)
    if isinstance(output, SignalBatch):
        p = next((p for p in output.proposals if p.symbol.upper() == symbol), None)
        if p is not None:
            return Answer(row.id, repeat, action=p.action, confidence=p.confidence, reasoning=p.reasoning)
    elif isinstance(output, RiskBatch):
        a = next((a for a in output.assessments if a.symbol.upper() == symbol), None)
        if a is not None:
            return Answer(row.id, repeat, position_pct=a.position_pct, stop_pct=a.stop_loss_pct,
                          take_profit_pct=a.take_profit_pct, reasoning=a.reasoning)
    elif isinstance(output, ValidatorBatch):
        v = next((v for v in output.verdicts if v.symbol.upper() == symbol), None)
        if v is not None:
            return Answer(row.id, repeat, approve=v.approve, reasoning=v.reasoning)
    return Answer(row.id, repeat, error=f"the answer left out {symbol}")


def same_answer(a: Answer, b: Answer) -> bool:
    """Whether two answers say the same thing (sizes within 1% of each other; failures never match an answer)."""
    if not (a.ok and b.ok):
        return a.ok == b.ok
    if a.action is not None or b.action is not None:
        return a.action == b.action
    if a.approve is not None or b.approve is not None:
        return a.approve == b.approve
    return (_close(a.position_pct, b.position_pct) and _close(a.stop_pct, b.stop_pct)
            and _close(a.take_profit_pct, b.take_profit_pct))


def _close(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=0.01, abs_tol=1e-6)
