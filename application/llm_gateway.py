"""LLMGateway: every agent call goes through here — daily spending cap, usage records, failures as None.

The cap is kept by a `SpendLedger` shared by every gateway of the process and by the chat (one ledger for the
cycle's agents, the discovery picker and the chat): before a paid call its worst case (its prompt's tokens at the
model's input price and its completion limit at the output price, or a configured estimate) is reserved, each
retry's before the retry is made, and the reservation is settled with the real cost after, so concurrent calls
cannot overshoot the cap. A cycle first holds what all its stages may cost (`hold`), and its calls draw from
that hold. Calls may run concurrently; usage records and events are buffered per cycle (discovery's under no
cycle) and written by `flush` in that cycle's transaction (one database session must not be used by several
tasks at once).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo

import structlog
from pydantic import BaseModel, ValidationError

from application.llm_spend import Reservation, SpendLedger
from application.tracing import NULL_SPAN, NULL_TRACER
from domain.errors import LLMBudgetExceededError, LLMError
from domain.event_factories import llm_budget_exhausted, llm_failed
from domain.events import Event
from domain.ports.llm import LLM, CallEstimating, CostEstimating, Decision, LLMRequest, LLMUsage, OutputT
from domain.ports.repositories import LLMCallRecord
from domain.ports.tracer import Span, Tracer
from domain.ports.uow import UnitOfWork

log = structlog.get_logger(__name__)


def symbols_asked(context: BaseModel) -> list[str]:
    """The symbols an agent's context asks about (its `symbols` or `candidates`), for the trace."""
    for name in ("symbols", "candidates"):
        items = getattr(context, name, None)
        if isinstance(items, tuple | list):
            return [str(getattr(item, "symbol", item)) for item in items]
    return []


@dataclass
class LLMGateway:
    """Routes each agent to its LLM and holds spend inside `daily_cap_usd` (0 = no paid calls at all).

    Attributes:
        llms: agent name -> LLM; the key "default" serves agents not listed.
        daily_cap_usd: cap per exchange day; offline models cost nothing and are never capped.
        scope: the scope calls are recorded under.
        tz: timezone whose midnight starts a new budget day.
        tracer: where each call's "agent" span goes (none recorded by default).
        ledger: the process's spend ledger (shared with other gateways and the chat); by default one of its own
            on `daily_cap_usd` and `scope`.
        call_estimate_usd: what a paid call reserves when its model cannot estimate its worst case, or always
            when set; None: the model's estimate, else nothing.
    """

    llms: Mapping[str, LLM]
    daily_cap_usd: float
    scope: str
    tz: tzinfo
    tracer: Tracer = NULL_TRACER
    ledger: SpendLedger | None = None
    call_estimate_usd: float | None = None
    _pending: list[LLMCallRecord] = field(default_factory=list)
    _events: list[Event] = field(default_factory=list)
    _budget_alerted: set[str] = field(default_factory=set)
    _holds: dict[str, Reservation] = field(default_factory=dict)
    _own_ledger: bool = False

    def __post_init__(self) -> None:
        if self.ledger is None:
            self.ledger, self._own_ledger = SpendLedger(self.daily_cap_usd, (self.scope,), self.tz), True

    @property
    def spend(self) -> SpendLedger:
        """The spend ledger (its cap follows `daily_cap_usd` when it is the gateway's own)."""
        if self.ledger is None:
            raise RuntimeError("the gateway has no spend ledger")
        if self._own_ledger:
            self.ledger.cap_usd = self.daily_cap_usd
        return self.ledger

    def _llm(self, agent: str) -> LLM:
        return self.llms.get(agent) or self.llms["default"]

    def _is_free(self, llm: LLM) -> bool:
        return getattr(llm, "provider", "") in ("offline", "replay")

    def is_free(self, agent: str) -> bool:
        """Whether `agent`'s calls cost nothing (the offline policy, replays): they reserve nothing."""
        return self._is_free(self._llm(agent))

    async def load_spend(self, uow: UnitOfWork, as_of: datetime) -> float:
        """Read today's spend from the database (call once per cycle, before the agents run); calls made in this
        process and not written yet count too."""
        return await self.spend.load(uow, as_of)

    def worst_case_usd(self, llm: LLM, request: LLMRequest[OutputT]) -> float:
        """What one attempt of a call reserves: `call_estimate_usd` when set, else the model's estimate for the
        request (its prompt tokens at the input price, its completion limit at the output price), else the
        model's worst case for the prompt's size (the schema counted twice), else 0."""
        if self.call_estimate_usd is not None:
            return self.call_estimate_usd
        if isinstance(llm, CallEstimating):
            return llm.estimate_cost_usd(request) or 0.0
        if not isinstance(llm, CostEstimating):
            return 0.0
        schema = len(json.dumps(request.output_schema.model_json_schema()))
        chars = sum(len(m.content) for m in request.messages) + 2 * schema
        return llm.worst_case_cost_usd(request.agent, chars) or 0.0

    def estimate_usd(self, request: LLMRequest[OutputT]) -> float:
        """What `request` would reserve (0 for a free model)."""
        llm = self._llm(request.agent)
        return 0.0 if self._is_free(llm) else self.worst_case_usd(llm, request)

    async def hold(self, cycle_id: str, totals: Sequence[float]) -> int:
        """Hold for `cycle_id`'s calls the largest of `totals` the cap can cover (`totals[i]`: what the cycle's
        stages cost for its first i+1 symbols, see `SpendLedger.reserve_most`); its calls draw from the hold until
        `release_hold`. It does not wait for other callers' calls in flight (a cycle's exits must not wait on a
        chat answer): what does not fit now is asked at a later cycle. Returns how many symbols are covered."""
        self.release_hold(cycle_id)
        count, held = await self.spend.reserve_most(totals, wait=False)
        if held is not None:
            self._holds[cycle_id] = held
        return count

    def release_hold(self, cycle_id: str | None) -> None:
        """Give back what `cycle_id`'s calls did not draw from its hold."""
        held = self._holds.pop(cycle_id, None) if cycle_id is not None else None
        if held is not None:
            self.spend.release(held)

    def alert_budget(self, as_of: datetime, cycle_id: str | None) -> None:
        """The cap refused a call or kept symbols from the agents: the day's one budget alert, if not sent yet."""
        ledger = self.spend
        day = ledger.day or as_of.astimezone(self.tz).date().isoformat()
        if day not in self._budget_alerted:
            self._budget_alerted.add(day)
            self._events.append(llm_budget_exhausted(at=as_of, scope=self.scope, cycle_id=cycle_id,
                                                     cap_usd=ledger.cap_usd, spent_usd=ledger.spent))

    async def _reserve(self, held: Reservation | None, amount: float) -> Reservation | None:
        if held is not None:
            return self.spend.draw(held, amount)
        return await self.spend.reserve(amount)

    async def ask(self, request: LLMRequest[OutputT]) -> Decision[OutputT] | None:
        """Call the agent's LLM; None (and a recorded reason) when over budget or when the call failed.

        With tracing on, the call is an "agent <name>" span (agent, cycle id, symbols asked) under the span open
        in the caller's context; the LLM's own span nests under it."""
        if not self.tracer.enabled:
            return await self._ask(request, NULL_SPAN)
        asked = symbols_asked(request.context)
        async with self.tracer.span(f"agent {request.agent}", inputs={"symbols": asked}, metadata={
                "agent": request.agent, "cycle_id": request.cycle_id, "n_symbols": len(asked),
                "scope": self.scope}) as span:
            return await self._ask(request, span)

    async def _ask(self, request: LLMRequest[OutputT], span: Span) -> Decision[OutputT] | None:
        llm = self._llm(request.agent)
        ledger = self.spend
        reservation: Reservation | None = None
        if not self._is_free(llm):
            held = self._holds.get(request.cycle_id) if request.cycle_id is not None else None
            reservation = await self._reserve(held, self.worst_case_usd(llm, request))
            if reservation is None:
                self._refuse(request)
                span.set_outputs({"answered": False, "refused": "daily LLM spend cap reached",
                                  "spent_usd": ledger.spent, "cap_usd": ledger.cap_usd})
                return None
            request = replace(request, budget=_AttemptGuard(ledger, reservation, held))
        started, cost = time.perf_counter(), 0.0
        try:
            decision = await llm.complete(request)
            cost = decision.usage.cost_usd
        except (LLMError, ValidationError, ValueError, TypeError) as exc:
            reason, cost = self._failed(request, llm, exc, started)
            span.set_error(reason)
            return None
        finally:
            await self._settle(reservation, cost)
        u = decision.usage
        self._pending.append(LLMCallRecord(
            at=request.as_of, scope=self.scope, agent=request.agent, provider=u.provider, model=u.model,
            prompt_tokens=u.prompt_tokens, completion_tokens=u.completion_tokens, cost_usd=u.cost_usd,
            latency_ms=u.latency_ms, ok=True, cycle_id=request.cycle_id, error=None,
            request_hash=request.fingerprint(u.model)))
        span.set_outputs({"answered": True, "provider": u.provider, "model": u.model, "cost_usd": u.cost_usd})
        return decision

    async def _settle(self, reservation: Reservation | None, cost: float) -> None:
        if reservation is not None:
            await self.spend.settle(reservation, cost)
        elif cost:
            self.spend.charge(cost)

    def _refuse(self, request: LLMRequest[OutputT]) -> None:
        """Over the daily cap: one alert event per budget day, a warning per refused call."""
        ledger = self.spend
        self.alert_budget(request.as_of, request.cycle_id)
        log.warning("llm_budget_exhausted", agent=request.agent, spent=ledger.spent, reserved=ledger.reserved,
                    cap=ledger.cap_usd)

    def _failed(self, request: LLMRequest[OutputT], llm: LLM, exc: Exception, started: float) -> tuple[str, float]:
        """Record a failed call; the reason and what its attempts cost."""
        if isinstance(exc, LLMBudgetExceededError):
            self.spend.exhaust()
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        paid = getattr(exc, "usage", None)
        cost = paid.cost_usd if isinstance(paid, LLMUsage) else 0.0
        self._pending.append(LLMCallRecord(
            at=request.as_of, scope=self.scope, agent=request.agent,
            provider=getattr(llm, "provider", type(llm).__name__), model=str(getattr(exc, "model", "?")),
            prompt_tokens=paid.prompt_tokens if isinstance(paid, LLMUsage) else 0,
            completion_tokens=paid.completion_tokens if isinstance(paid, LLMUsage) else 0, cost_usd=cost,
            latency_ms=(time.perf_counter() - started) * 1000, ok=False,
            cycle_id=request.cycle_id, error=reason, request_hash=None))
        self._events.append(llm_failed(at=request.as_of, scope=self.scope, cycle_id=request.cycle_id,
                                       agent=request.agent, error=reason))
        log.warning("llm_failed", agent=request.agent, error=reason)
        return reason, cost

    def calls(self, cycle_id: str) -> tuple[LLMCallRecord, ...]:
        """The usage records of `cycle_id`'s calls not flushed yet, in the order they were made."""
        return tuple(r for r in self._pending if r.cycle_id == cycle_id)

    async def flush(self, uow: UnitOfWork, cycle_id: str | None) -> None:
        """Write the buffered usage records and events of `cycle_id` (None: calls made outside a cycle, such as
        discovery's) in the caller's transaction; other callers' stay buffered."""
        self.release_hold(cycle_id)
        pending = self._take(cycle_id)
        events = [e for e in self._events if e.cycle_id == cycle_id]
        self._events = [e for e in self._events if e.cycle_id != cycle_id]
        for record in pending:
            await uow.llm_calls.add(record)
        self.spend.written(sum(r.cost_usd for r in pending))
        if events:
            await uow.events.add(events)

    def discard(self, cycle_id: str | None) -> None:
        """Forget the buffered records and events of `cycle_id` (the transaction they belonged to rolled back)."""
        self.release_hold(cycle_id)
        self.spend.dropped(sum(r.cost_usd for r in self._take(cycle_id)))
        self._events = [e for e in self._events if e.cycle_id != cycle_id]

    def _take(self, cycle_id: str | None) -> list[LLMCallRecord]:
        taken = [r for r in self._pending if r.cycle_id == cycle_id]
        self._pending = [r for r in self._pending if r.cycle_id != cycle_id]
        return taken


@dataclass
class _AttemptGuard:
    """A call's `AttemptBudget`: a retry is made only when the call's reservation can grow to cover what the
    attempts so far cost and the next one's worst case (from the cycle's hold first, then the cap)."""

    ledger: SpendLedger
    reservation: Reservation
    hold: Reservation | None

    async def another_attempt(self, spent_usd: float, next_attempt_usd: float) -> bool:
        extra = spent_usd + next_attempt_usd - self.reservation.amount
        if extra <= 0 or self.ledger.grow(self.reservation, extra, self.hold):
            return True
        log.warning("llm_retry_refused", reason="daily LLM spend cap", spent=self.ledger.spent,
                    reserved=self.ledger.reserved, cap=self.ledger.cap_usd, needed=extra)
        return False
