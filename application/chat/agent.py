"""ChatAssistant: answers one chat message with a tool-calling model, or with the deterministic router.

With a model: a system prompt, then up to `max_rounds` model calls; the tool calls of each answer run through the
tool box (each reported to the step sink before and after) and go back as tool turns, until the model answers in
text. Before every model call today's LLM spend (all agents, read from `llm_calls`, the day starting at midnight
in `tz`) is read into the spend ledger shared with the process's agents, and the call's worst-case cost is
reserved against the daily cap (so concurrent conversations cannot overshoot it); every call, failed ones
included, is recorded there under agent "chat" and settles its reservation with what it cost. Over the cap, or
when the model fails, the router answers (or, when tools already ran, their results are shown) with a plain note.
Without a model the router answers everything.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import structlog

from application.chat.contracts import ChatAnswer, StepSink, ToolBox
from application.chat.markdown import results_markdown, tool_message
from application.chat.router import DeterministicRouter
from application.llm_spend import Reservation, SpendLedger
from domain.chat import UNPARSED_ARGUMENTS, ChatTurn, ControlAction, PendingAction, ToolCall, ToolResult, ToolSpec
from domain.errors import LLMError
from domain.ports.chat import ToolCallingLLM
from domain.ports.llm import CostEstimating, LLMUsage
from domain.ports.repositories import LLMCallRecord
from domain.ports.uow import UnitOfWorkFactory

log = structlog.get_logger(__name__)
AGENT = "chat"
ROUTER = "router"
FREE_PROVIDERS = frozenset({"offline", "replay"})

SYSTEM_PROMPT = """You are the assistant of Quorum, a self-hosted trading agent for US equities on Alpaca. Several \
voices (rule-based pickers, LLM agents and a vector memory of past trades) vote on each trading cycle and \
deterministic hard limits have the last word. You answer the operator's questions about the running system and \
pass on their orders.

Rules:
- Every number you state (prices, returns, cash, counts, costs) must come from a tool result in this conversation. \
If no tool gives it, say you do not know; never estimate or invent one.
- Use the tools: portfolio for holdings and cash, performance for returns over a window, search_events for what \
happened and why, patterns for what preceded wins and losses, query_sql for anything else over the documented views.
- When you use events, cite each one with its time and cycle id.
- Control actions (pause, resume, run a cycle, run evals, flatten) only make a proposal; nothing happens until the \
user confirms it below your answer. Never say an action was done; say it waits for their confirmation. Propose \
one only when the user asks for it.
- Be brief. Use markdown tables for tabular answers.

Now: {as_of} (UTC). User: {who}."""


class ChatAssistant:
    """Answers chat messages with a tool-calling model within the daily LLM cap, or with the router.

    Args:
        tools: the tool box (the six chat tools).
        uow_factory: units of work, to read today's LLM spend and record each chat call.
        scope: the account scope the spend is read and recorded under.
        daily_cap_usd: the daily LLM cap shared with the trading agents (`llm.daily_cap_usd`; 0: no paid calls).
        tz: the timezone whose midnight starts a budget day (the exchange's, as for the agents).
        llm: the chat model; None: the router answers every message.
        max_rounds: most model calls for one message.
        router: the router (default: one built on the tool box's specs).
        ledger: the process's spend ledger, shared with its LLM gateway (default: one of the chat's own on
            `daily_cap_usd` and `scope`).
        call_estimate_usd: what a call reserves instead of the model's worst case (None: the model's estimate).
    """

    def __init__(self, tools: ToolBox, *, uow_factory: UnitOfWorkFactory, scope: str, daily_cap_usd: float,
                 tz: tzinfo, llm: ToolCallingLLM | None = None, max_rounds: int = 6,
                 router: DeterministicRouter | None = None, ledger: SpendLedger | None = None,
                 call_estimate_usd: float | None = None) -> None:
        if max_rounds < 1:
            raise ValueError("max_rounds must be at least 1")
        self.tools = tools
        self.uow_factory = uow_factory
        self.scope = scope
        self.daily_cap_usd = daily_cap_usd
        self.tz = tz
        self.llm = llm
        self.max_rounds = max_rounds
        self.router = router or DeterministicRouter(tools.specs())
        self.ledger = ledger or SpendLedger(daily_cap_usd, (scope,), tz)
        self.call_estimate_usd = call_estimate_usd

    async def answer(self, history: Sequence[ChatTurn], text: str, *, who: str, as_of: datetime,
                     steps: StepSink) -> ChatAnswer:
        """Answer `text`, the conversation so far being `history` (without the system prompt).

        Args:
            history: earlier turns of this conversation, as returned in earlier answers' `turns`.
            text: the user's message.
            who: the user (tools record it with control proposals).
            as_of: now.
            steps: where each tool call is reported, before and after it runs.

        Returns:
            The answer; `turns` holds the user's turn and everything appended after it.
        """
        user = ChatTurn("user", text)
        if self.llm is None:
            return await self._route(text, len(history), [user], who=who, as_of=as_of, steps=steps)
        return await self._converse(self.llm, history, user, who=who, as_of=as_of, steps=steps)

    async def _converse(self, llm: ToolCallingLLM, history: Sequence[ChatTurn], user: ChatTurn, *, who: str,
                        as_of: datetime, steps: StepSink) -> ChatAnswer:
        system = ChatTurn("system", SYSTEM_PROMPT.format(as_of=as_of.isoformat(timespec="minutes"), who=who))
        turns, new_turns = [system, *history, user], [user]
        results: list[ToolResult] = []
        cost, model = 0.0, ROUTER
        specs = self.tools.specs()
        for round_ in range(1, self.max_rounds + 1):
            reservation = await self._reserve(llm, turns, specs, as_of)
            if isinstance(reservation, str):
                return await self._fall_back(reservation, history, new_turns, results, cost, model, who, as_of,
                                             steps)
            started, spent = time.perf_counter(), 0.0
            try:
                reply = await llm.chat(turns, specs, as_of=as_of)
                spent = reply.usage.cost_usd
                await self._record(reply.usage, as_of)
            except (LLMError, ValueError, TypeError) as exc:
                spent = await self._record_failure(llm, exc, as_of, started)
                note = f"The chat model failed ({type(exc).__name__}), so the built-in router answers."
                return await self._fall_back(note, history, new_turns, results, cost + spent, model, who, as_of,
                                             steps)
            finally:
                await self._settle(reservation, spent)
            cost, model = cost + reply.usage.cost_usd, reply.usage.model
            if not reply.tool_calls:
                final = reply.content.strip() or results_markdown(results) or "The model gave no answer."
                new_turns.append(ChatTurn("assistant", final))
                return self._answer(final, results, new_turns, model, cost, who, as_of)
            if round_ == self.max_rounds:
                break  # no model call is left to read what these tools would answer
            asked = ChatTurn("assistant", reply.content, tool_calls=reply.tool_calls)
            turns.append(asked)
            new_turns.append(asked)
            for call in reply.tool_calls:
                result = await self._run(call, who=who, as_of=as_of, steps=steps)
                results.append(result)
                answer_turn = ChatTurn("tool", tool_message(result), tool_call_id=call.id)
                turns.append(answer_turn)
                new_turns.append(answer_turn)
        note = f"The model asked for more tools after {self.max_rounds} rounds without answering; this is what the " \
               "tools returned."
        final = "\n\n".join(p for p in (note, results_markdown(results)) if p)
        new_turns.append(ChatTurn("assistant", final))
        return self._answer(final, results, new_turns, model, cost, who, as_of)

    async def _fall_back(self, note: str, history: Sequence[ChatTurn], new_turns: list[ChatTurn],
                         results: list[ToolResult], cost: float, model: str, who: str, as_of: datetime,
                         steps: StepSink) -> ChatAnswer:
        """The router's answer (nothing ran yet), or what the tools returned so far, after `note`."""
        if not results:
            routed = await self._route(new_turns[0].content, len(history), new_turns, who=who, as_of=as_of,
                                       steps=steps, note=note)
            return ChatAnswer(routed.text, routed.results, routed.pending, routed.turns, ROUTER, cost)
        final = f"{note}\n\n{results_markdown(results)}"
        new_turns.append(ChatTurn("assistant", final))
        return self._answer(final, results, new_turns, model, cost, who, as_of)

    async def _route(self, text: str, n_history: int, new_turns: list[ChatTurn], *, who: str, as_of: datetime,
                     steps: StepSink, note: str = "") -> ChatAnswer:
        plan = self.router.plan(text, call_prefix=f"route_{n_history}_")
        results: list[ToolResult] = []
        if plan is None:
            reason = f"{note} This question needs the model." if note else None
            final = self.router.cannot_answer(reason=reason)
        else:
            if plan.calls:
                new_turns.append(ChatTurn("assistant", "", tool_calls=plan.calls))
            for call in plan.calls:
                result = await self._run(call, who=who, as_of=as_of, steps=steps)
                results.append(result)
                new_turns.append(ChatTurn("tool", tool_message(result), tool_call_id=call.id))
            final = "\n\n".join(p for p in (note, self.router.compose(plan, results)) if p)
        new_turns.append(ChatTurn("assistant", final))
        return self._answer(final, results, new_turns, ROUTER, 0.0, who, as_of)

    async def _run(self, call: ToolCall, *, who: str, as_of: datetime, steps: StepSink) -> ToolResult:
        """Run one call (a call with unreadable arguments or an unknown tool is answered, not run)."""
        await steps.tool_started(call)
        known = {spec.name for spec in self.tools.specs()}
        if set(call.arguments) == {UNPARSED_ARGUMENTS}:
            raw = str(call.arguments[UNPARSED_ARGUMENTS])[:200]
            result = ToolResult(call.name, call.arguments, False, f"bad arguments: not a JSON object ({raw!r}); "
                                "send a JSON object that matches the tool's parameters")
        elif call.name not in known:
            result = ToolResult(call.name, call.arguments, False,
                                f"no tool named {call.name!r}; the tools are {', '.join(sorted(known))}")
        else:
            try:
                result = await self.tools.run(call, who=who, as_of=as_of)
            except Exception as exc:  # the tool box must not raise; if it does, the model is told
                log.exception("chat.tool_raised", tool=call.name)
                result = ToolResult(call.name, call.arguments, False, f"the tool failed: {type(exc).__name__}")
        await steps.tool_finished(call, result)
        return result

    async def _reserve(self, llm: ToolCallingLLM, turns: Sequence[ChatTurn], specs: Sequence[ToolSpec],
                       as_of: datetime) -> Reservation | str | None:
        """The call's reservation (None for a free model); else the note saying the budget is spent."""
        if llm.provider in FREE_PROVIDERS:
            return None
        async with self.uow_factory() as uow:
            await self.ledger.load(uow, as_of)
        reservation = await self.ledger.reserve(self.worst_case_usd(llm, turns, specs))
        if reservation is not None:
            return reservation
        spent, cap = self.ledger.spent, self.ledger.cap_usd
        log.warning("chat.llm_budget_exhausted", spent=spent, cap=cap)
        return (f"The chat model's daily budget is spent (${spent:.2f} of the ${cap:.2f} daily LLM "
                f"cap, shared with the trading agents), so the built-in router answers until midnight ({self.tz}).")

    def worst_case_usd(self, llm: ToolCallingLLM, turns: Sequence[ChatTurn], specs: Sequence[ToolSpec]) -> float:
        """What one model call reserves: `call_estimate_usd`, else the model's worst case for the turns and tools
        sent, else 0."""
        if self.call_estimate_usd is not None:
            return self.call_estimate_usd
        if not isinstance(llm, CostEstimating):
            return 0.0
        chars = sum(len(t.content) + sum(len(c.name) + len(json.dumps(c.arguments, default=str))
                                         for c in t.tool_calls) for t in turns)
        chars += sum(len(s.name) + len(s.description) + len(json.dumps(s.parameters)) for s in specs)
        return llm.worst_case_cost_usd(AGENT, chars) or 0.0

    async def _settle(self, reservation: Reservation | None, cost: float) -> None:
        if reservation is not None:
            await self.ledger.settle(reservation, cost, written=True)

    async def _record(self, usage: LLMUsage, as_of: datetime) -> None:
        await self._store(LLMCallRecord(
            at=as_of, scope=self.scope, agent=AGENT, provider=usage.provider, model=usage.model,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens, cost_usd=usage.cost_usd,
            latency_ms=usage.latency_ms, ok=True))

    async def _record_failure(self, llm: ToolCallingLLM, exc: Exception, as_of: datetime, started: float) -> float:
        """Record a failed call with what its attempts cost; returns that cost."""
        paid = getattr(exc, "usage", None)
        usage = paid if isinstance(paid, LLMUsage) else None
        reason = f"{type(exc).__name__}: {str(exc)[:500]}"
        log.warning("chat.llm_failed", error=reason)
        await self._store(LLMCallRecord(
            at=as_of, scope=self.scope, agent=AGENT, provider=llm.provider,
            model=str(getattr(exc, "model", None) or getattr(llm, "model", "?")),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cost_usd=usage.cost_usd if usage else 0.0, latency_ms=(time.perf_counter() - started) * 1000, ok=False,
            error=reason))
        return usage.cost_usd if usage else 0.0

    async def _store(self, record: LLMCallRecord) -> None:
        async with self.uow_factory() as uow:
            await uow.llm_calls.add(record)
            await uow.commit()

    def _answer(self, text: str, results: Sequence[ToolResult], turns: Sequence[ChatTurn], model: str, cost: float,
                who: str, as_of: datetime) -> ChatAnswer:
        return ChatAnswer(text, tuple(results), pending_action(results, who=who, as_of=as_of), tuple(turns), model,
                          cost)


def pending_action(results: Sequence[ToolResult], *, who: str, as_of: datetime) -> PendingAction | None:
    """The control action the last successful control call proposed (its `data["pending"]`, or
    `data["pending_action"]`), if any."""
    for result in reversed(results):
        data = result.data if result.ok and result.name == "control" else {}
        proposed: Any = data.get("pending") or data.get("pending_action")
        if not isinstance(proposed, dict) or not proposed.get("id"):
            continue
        try:
            action = ControlAction(str(proposed.get("action")))
        except ValueError:
            continue
        return PendingAction(
            id=str(proposed["id"]), action=action, requested_by=str(proposed.get("requested_by") or who),
            requested_at=_when(proposed.get("requested_at"), as_of),
            expires_at=_when(proposed.get("expires_at"), as_of),
            reason=str(proposed.get("reason") or result.arguments.get("reason", "")))
    return None


def _when(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) else default
