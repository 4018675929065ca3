"""The signal, risk and validator agents: typed prompts in, typed proposals out, HOLD on any failure.

Symbols are batched into one prompt per chunk; chunks run concurrently under
a bound. A proposal for a symbol that was not asked about is dropped and
logged; a symbol the answer left out is a HOLD.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import structlog
from pydantic import BaseModel

from application.llm_gateway import LLMGateway
from domain.agents.schemas import (
    MarketConditions,
    RiskAssessment,
    RiskBatch,
    RiskCandidate,
    RiskContext,
    SignalBatch,
    SignalContext,
    SignalProposal,
    SymbolFeatures,
    ValidatorBatch,
    ValidatorCandidate,
    ValidatorContext,
    ValidatorVerdict,
)
from domain.ports.llm import LLM, AgentName, LLMRequest, Message

log = structlog.get_logger(__name__)
T = TypeVar("T", bound=BaseModel)

ROLES: dict[str, str] = {
    "signal": (
        "You are the signal agent of a cautious US-equity trading system with a small account. For each symbol "
        "in the context decide BUY (enter long), SELL (exit a held position) or HOLD, with a confidence in [0,1] "
        "and a one-sentence reason. Use trend, momentum, volatility, market conditions and the outcomes of "
        "similar past trades and market conditions. Prefer HOLD when unsure."
    ),
    "risk": (
        "You are the risk agent. For each candidate propose a position size as a share of equity (position_pct) "
        "and a protective stop distance (stop_loss_pct), optionally a take-profit distance. Hard limits are "
        "enforced after you and cannot be widened."
    ),
    "validator": (
        "You are the validator. For each candidate, approve or reject, and list warnings. You may only lower "
        "confidence (confidence_adjustment <= 0). Reject setups whose similar past trades mostly lost."
    ),
}


@functools.cache
def system_prompt(agent: AgentName, schema: type[BaseModel]) -> str:
    """The agent's role and its output schema (computed once per agent and schema)."""
    return (
        f"{ROLES[agent]}\nAnswer with one JSON object and nothing else, matching this JSON schema:\n"
        f"{json.dumps(schema.model_json_schema(), sort_keys=True)}"
    )


def render(agent: AgentName, context: BaseModel, schema: type[BaseModel]) -> tuple[Message, ...]:
    """System prompt with the output schema, user message with the typed context as JSON."""
    return Message("system", system_prompt(agent, schema)), Message("user", context.model_dump_json())


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """Consecutive slices of at most `size` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]


class Agents:
    """The three agents sharing one gateway and one concurrency bound.

    Args:
        gateway: routes each agent to its LLM under the daily spend cap.
        chunk_size: symbols per prompt.
        concurrency: prompts in flight at once.
        exit_rules: a free, deterministic policy (the offline one) asked only for the held symbols of a
            signal prompt that failed (outage, garbage, spend cap): its SELLs are kept, everything else is a
            HOLD, so exits never wait for an LLM and no entry is made without one.
    """

    def __init__(self, gateway: LLMGateway, *, chunk_size: int = 10, concurrency: int = 4,
                 exit_rules: LLM | None = None) -> None:
        self._gateway = gateway
        self._chunk = max(1, chunk_size)
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._exit_rules = exit_rules

    async def _rule_exits(self, held: Sequence[SymbolFeatures], market: MarketConditions, as_of: datetime,
                          cycle_id: str) -> dict[str, SignalProposal]:
        if self._exit_rules is None or not held:
            return {}
        context = SignalContext(as_of=as_of.isoformat(), market=market, symbols=tuple(held))
        request = LLMRequest(agent="signal", messages=render("signal", context, SignalBatch), output_schema=SignalBatch,
                             context=context, as_of=as_of, cycle_id=cycle_id)
        try:
            decision = await self._exit_rules.complete(request)
        except Exception as exc:  # noqa: BLE001 - rule exits are a fallback; a failure leaves the HOLDs
            log.error("rule_exits_failed", error=f"{type(exc).__name__}: {exc}")
            return {}
        out = {}
        for p in decision.output.proposals:
            if p.action == "SELL" and p.symbol.upper() in {f.symbol for f in held}:
                out[p.symbol.upper()] = p.model_copy(update={
                    "reasoning": f"rule exit (signal agent unavailable): {p.reasoning}"})
        return out

    async def _ask(self, agent: AgentName, context: BaseModel, schema: type[T], as_of: datetime,
                   cycle_id: str) -> T | None:
        request = LLMRequest(agent=agent, messages=render(agent, context, schema), output_schema=schema,
                             context=context, as_of=as_of, cycle_id=cycle_id)
        async with self._sem:
            decision = await self._gateway.ask(request)
        return None if decision is None else decision.output

    async def signals(self, features: Sequence[SymbolFeatures], market: MarketConditions, *, as_of: datetime,
                      cycle_id: str) -> dict[str, SignalProposal]:
        """One proposal per symbol (HOLD when the agent failed or left the symbol out)."""
        parts = chunks(list(features), self._chunk)
        answers = await asyncio.gather(*[
            self._ask("signal", SignalContext(as_of=as_of.isoformat(), market=market, symbols=tuple(part)),
                      SignalBatch, as_of, cycle_id) for part in parts])
        out: dict[str, SignalProposal] = {}
        for part, answer in zip(parts, answers, strict=True):
            asked = {f.symbol for f in part}
            if answer is None:
                got = await self._rule_exits([f for f in part if f.held_qty > 0], market, as_of, cycle_id)
                for sym in sorted(asked):
                    out[sym] = got.get(sym) or SignalProposal(symbol=sym, action="HOLD", confidence=0.0,
                                                              reasoning="signal agent failed; holding")
                continue
            got = {p.symbol.upper(): p for p in answer.proposals}
            for extra in sorted(set(got) - asked):
                log.warning("agent_unknown_symbol", agent="signal", symbol=extra)
            for sym in sorted(asked):
                out[sym] = got.get(sym) or SignalProposal(
                    symbol=sym, action="HOLD", confidence=0.0, reasoning="signal agent gave no answer")
        return out

    async def risk(self, candidates: Sequence[RiskCandidate], *, equity: float, cash: float, gross_pct: float,
                   max_position_pct: float, default_stop_pct: float, as_of: datetime,
                   cycle_id: str) -> dict[str, RiskAssessment]:
        """Sizing per candidate; a candidate without an assessment gets none (it will not be entered)."""
        parts = chunks(list(candidates), self._chunk)
        answers = await asyncio.gather(*[
            self._ask("risk", RiskContext(as_of=as_of.isoformat(), equity=equity, cash=cash,
                                          gross_exposure_pct=gross_pct, max_position_pct=max_position_pct,
                                          default_stop_pct=default_stop_pct, candidates=tuple(part)),
                      RiskBatch, as_of, cycle_id) for part in parts])
        out: dict[str, RiskAssessment] = {}
        for part, answer in zip(parts, answers, strict=True):
            asked = {c.symbol for c in part}
            for a in answer.assessments if answer else []:
                if a.symbol.upper() in asked and a.symbol.upper() not in out:
                    out[a.symbol.upper()] = a
        return out

    async def validate(self, candidates: Sequence[ValidatorCandidate], market: MarketConditions, *,
                       as_of: datetime, cycle_id: str) -> dict[str, ValidatorVerdict]:
        """Verdict per candidate; a missing verdict means the validator agent could not judge it."""
        parts = chunks(list(candidates), self._chunk)
        answers = await asyncio.gather(*[
            self._ask("validator", ValidatorContext(as_of=as_of.isoformat(), market=market, candidates=tuple(part)),
                      ValidatorBatch, as_of, cycle_id) for part in parts])
        out: dict[str, ValidatorVerdict] = {}
        for part, answer in zip(parts, answers, strict=True):
            asked = {c.symbol for c in part}
            for v in answer.verdicts if answer else []:
                if v.symbol.upper() in asked and v.symbol.upper() not in out:
                    out[v.symbol.upper()] = v
        return out
