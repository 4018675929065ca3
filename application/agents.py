"""The signal, risk and validator agents: typed prompts in, typed proposals out, HOLD on any failure.

Symbols are batched into one prompt per chunk; chunks run concurrently under
a bound. A proposal for a symbol that was not asked about is dropped and
logged; a symbol the answer left out is a HOLD.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog
from pydantic import BaseModel

from application import prompts
from application.llm_gateway import LLMGateway
from application.prompts import COMPACT_STYLE, PromptStyle
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
FAILED_HOLD = "signal agent failed; holding"
NO_ANSWER = "signal agent gave no answer"
RULE_EXIT = "rule exit (signal agent unavailable): "
SKIPPED_BY_CAP = "skipped: daily LLM cap"
"""Why a symbol the daily cap kept from the agents holds (the cap could not carry it through every stage)."""
OUTPUT_TOKENS_BASE = 64
"""Completion tokens allowed per call besides its items' (the batch's braces and keys)."""

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
def system_prompt(agent: AgentName, schema: type[BaseModel], style: PromptStyle = COMPACT_STYLE) -> str:
    """The agent's role and how to answer (with the output schema only in the legacy style; computed once)."""
    return prompts.system_prompt(ROLES[agent], schema, style)


def render(agent: AgentName, context: BaseModel, schema: type[BaseModel],
           style: PromptStyle = COMPACT_STYLE) -> tuple[Message, ...]:
    """System prompt first (the same for every call of the agent), then the typed context as JSON."""
    return (Message("system", system_prompt(agent, schema, style)),
            Message("user", prompts.user_content(context, style, agent=agent)))


def answered_by_agent(proposal: SignalProposal) -> bool:
    """Whether `proposal` is the signal agent's answer, not a stand-in for a failed or missing one."""
    return proposal.reasoning not in (FAILED_HOLD, NO_ANSWER, SKIPPED_BY_CAP) and \
        not proposal.reasoning.startswith(RULE_EXIT)


@dataclass(frozen=True)
class Sizing:
    """What the risk agent sizes against: the account and the limits."""

    equity: float
    cash: float
    gross_pct: float
    max_position_pct: float
    default_stop_pct: float


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
        style: how prompts are written (compact by default; `prompts.LEGACY_STYLE` for the old prompts).
        output_tokens_per_item: the completion limit of a call is `OUTPUT_TOKENS_BASE` plus this many tokens per
            symbol asked about (the model's own limit still applies); None: the model's limit only.
    """

    def __init__(self, gateway: LLMGateway, *, chunk_size: int = 10, concurrency: int = 4,
                 exit_rules: LLM | None = None, style: PromptStyle = COMPACT_STYLE,
                 output_tokens_per_item: int | None = None) -> None:
        self._gateway = gateway
        self.style = style
        self.output_tokens_per_item = output_tokens_per_item
        self._chunk = max(1, chunk_size)
        self._sem = asyncio.Semaphore(max(1, concurrency))
        self._exit_rules = exit_rules

    async def _rule_exits(self, held: Sequence[SymbolFeatures], market: MarketConditions, as_of: datetime,
                          cycle_id: str) -> dict[str, SignalProposal]:
        if self._exit_rules is None or not held:
            return {}
        context = SignalContext(as_of=as_of.isoformat(), market=market, symbols=tuple(held))
        request = LLMRequest(agent="signal", messages=render("signal", context, SignalBatch, self.style),
                             output_schema=SignalBatch,
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
                    "reasoning": f"{RULE_EXIT}{p.reasoning}"})
        return out

    @property
    def chunk_size(self) -> int:
        """Symbols per prompt."""
        return self._chunk

    def request(self, agent: AgentName, context: BaseModel, schema: type[T], items: int, as_of: datetime,
                cycle_id: str) -> LLMRequest[T]:
        """The request of one call about `items` symbols (its completion limit sized to them)."""
        per_item = self.output_tokens_per_item
        limit = None if per_item is None else OUTPUT_TOKENS_BASE + per_item * items
        return LLMRequest(agent=agent, messages=render(agent, context, schema, self.style), output_schema=schema,
                          context=context, as_of=as_of, cycle_id=cycle_id, max_output_tokens=limit)

    def signal_request(self, part: Sequence[SymbolFeatures], market: MarketConditions, as_of: datetime,
                       cycle_id: str) -> LLMRequest[SignalBatch]:
        """The signal agent's request about one chunk of symbols."""
        context = SignalContext(as_of=as_of.isoformat(), market=market, symbols=tuple(part))
        return self.request("signal", context, SignalBatch, len(part), as_of, cycle_id)

    def risk_request(self, part: Sequence[RiskCandidate], sizing: Sizing, as_of: datetime,
                     cycle_id: str) -> LLMRequest[RiskBatch]:
        """The risk agent's request about one chunk of candidates."""
        context = RiskContext(as_of=as_of.isoformat(), equity=sizing.equity, cash=sizing.cash,
                              gross_exposure_pct=sizing.gross_pct, max_position_pct=sizing.max_position_pct,
                              default_stop_pct=sizing.default_stop_pct, candidates=tuple(part))
        return self.request("risk", context, RiskBatch, len(part), as_of, cycle_id)

    def validator_request(self, part: Sequence[ValidatorCandidate], market: MarketConditions, as_of: datetime,
                          cycle_id: str) -> LLMRequest[ValidatorBatch]:
        """The validator agent's request about one chunk of candidates."""
        context = ValidatorContext(as_of=as_of.isoformat(), market=market, candidates=tuple(part))
        return self.request("validator", context, ValidatorBatch, len(part), as_of, cycle_id)

    async def _ask(self, request: LLMRequest[T]) -> T | None:
        async with self._sem:
            decision = await self._gateway.ask(request)
        return None if decision is None else decision.output

    async def skipped_by_cap(self, features: Sequence[SymbolFeatures], market: MarketConditions, *,
                             as_of: datetime, cycle_id: str) -> dict[str, SignalProposal]:
        """Proposals for symbols the daily cap kept from the agents: the free exit rules' SELLs for held ones
        (exits never wait for the LLM budget), HOLD ("skipped: daily LLM cap") for the rest."""
        exits = await self._rule_exits([f for f in features if f.held_qty > 0], market, as_of, cycle_id)
        return {f.symbol: exits.get(f.symbol) or SignalProposal(symbol=f.symbol, action="HOLD", confidence=0.0,
                                                                reasoning=SKIPPED_BY_CAP) for f in features}

    async def signals(self, features: Sequence[SymbolFeatures], market: MarketConditions, *, as_of: datetime,
                      cycle_id: str) -> dict[str, SignalProposal]:
        """One proposal per symbol (HOLD when the agent failed or left the symbol out)."""
        parts = chunks(list(features), self._chunk)
        answers = await asyncio.gather(*[self._ask(self.signal_request(part, market, as_of, cycle_id))
                                         for part in parts])
        out: dict[str, SignalProposal] = {}
        for part, answer in zip(parts, answers, strict=True):
            asked = {f.symbol for f in part}
            if answer is None:
                got = await self._rule_exits([f for f in part if f.held_qty > 0], market, as_of, cycle_id)
                for sym in sorted(asked):
                    out[sym] = got.get(sym) or SignalProposal(symbol=sym, action="HOLD", confidence=0.0,
                                                              reasoning=FAILED_HOLD)
                continue
            got = {p.symbol.upper(): p for p in answer.proposals}
            for extra in sorted(set(got) - asked):
                log.warning("agent_unknown_symbol", agent="signal", symbol=extra)
            for sym in sorted(asked):
                out[sym] = got.get(sym) or SignalProposal(
                    symbol=sym, action="HOLD", confidence=0.0, reasoning=NO_ANSWER)
        return out

    async def risk(self, candidates: Sequence[RiskCandidate], *, equity: float, cash: float, gross_pct: float,
                   max_position_pct: float, default_stop_pct: float, as_of: datetime,
                   cycle_id: str) -> dict[str, RiskAssessment]:
        """Sizing per candidate; a candidate without an assessment gets none (it will not be entered)."""
        parts = chunks(list(candidates), self._chunk)
        sizing = Sizing(equity, cash, gross_pct, max_position_pct, default_stop_pct)
        answers = await asyncio.gather(*[self._ask(self.risk_request(part, sizing, as_of, cycle_id))
                                         for part in parts])
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
        answers = await asyncio.gather(*[self._ask(self.validator_request(part, market, as_of, cycle_id))
                                         for part in parts])
        out: dict[str, ValidatorVerdict] = {}
        for part, answer in zip(parts, answers, strict=True):
            asked = {c.symbol for c in part}
            for v in answer.verdicts if answer else []:
                if v.symbol.upper() in asked and v.symbol.upper() not in out:
                    out[v.symbol.upper()] = v
        return out
