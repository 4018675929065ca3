"""Keyword constructors of the DEBUG events that name each step of a cycle's decision in the event log: the
market conditions it saw, what it recalled, how the risk agent sized and the validators judged each candidate,
and every LLM call. DEBUG is never alerted (`domain.alerts`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from domain.agents.schemas import MarketConditions, RiskAssessment, ValidatorVerdict
from domain.events import Event, EventType, Severity
from domain.ports.repositories import LLMCallRecord
from domain.validator import ValidationResult


def market_conditions_seen(*, at: datetime, scope: str, cycle_id: str, conditions: MarketConditions) -> Event:
    """The market conditions a cycle decides under."""
    c = conditions
    vix = "n/a" if c.vix is None else f"{c.vix:.1f}{' (proxy)' if c.vix_is_proxy else ''}"
    return Event(type=EventType.MARKET_CONDITIONS, at=at,
                 message=f"market: SPY trend {c.spy_trend}, 20-day return {c.spy_return_20d:+.2%}, "
                 f"{'above' if c.spy_above_sma_50 else 'below'} its 50-day average, VIX {vix}",
                 severity=Severity.DEBUG, cycle_id=cycle_id, symbol=None,
                 payload=c.model_dump(mode="json", exclude={"similar_conditions"}), scope=scope)


def recalled(*, at: datetime, scope: str, cycle_id: str, conditions: int | None,
             trades: Mapping[str, int]) -> Event:
    """How many similar market conditions (None: no conditions to compare) and similar past trades per entry
    candidate were recalled."""
    cond = "no market conditions to compare" if conditions is None else f"{conditions} similar market conditions"
    return Event(type=EventType.RECALL, at=at,
                 message=f"recalled {cond} and {sum(trades.values())} similar trades for {len(trades)} entry "
                 "candidates", severity=Severity.DEBUG, cycle_id=cycle_id, symbol=None,
                 payload={"conditions": conditions, "trades": dict(sorted(trades.items()))}, scope=scope)


def risk_sized(*, at: datetime, scope: str, cycle_id: str, symbol: str, assessment: RiskAssessment | None) -> Event:
    """The risk agent's sizing of one entry candidate (None: it gave none, so the entry will be rejected)."""
    a = assessment
    if a is None:
        message = f"{symbol}: the risk agent gave no sizing"
    else:
        take = "" if a.take_profit_pct is None else f", take profit {a.take_profit_pct:.1%}"
        message = f"{symbol}: risk agent sized {a.position_pct:.1%} of equity, stop {a.stop_loss_pct:.1%}{take}"
    return Event(type=EventType.RISK, at=at, message=message, severity=Severity.DEBUG, cycle_id=cycle_id,
                 symbol=symbol, payload={"assessment": None if a is None else a.model_dump(mode="json")},
                 scope=scope)


def validated(*, at: datetime, scope: str, cycle_id: str, symbol: str, rules: ValidationResult,
              agent: ValidatorVerdict | None) -> Event:
    """The rule validator's and the validator agent's judgement of one entry candidate (agent None: it was not
    asked, having no sizing, or gave no verdict)."""
    by_rules = "approve" if rules.approved else f"reject ({rules.rejected_reason})"
    by_agent = "gave no verdict" if agent is None else ("approves" if agent.approve else "rejects")
    return Event(type=EventType.VALIDATION, at=at,
                 message=f"{symbol}: rules {by_rules} at confidence {rules.confidence:.2f}; validator agent {by_agent}",
                 severity=Severity.DEBUG, cycle_id=cycle_id, symbol=symbol,
                 payload={"rules": {"approved": rules.approved, "confidence": rules.confidence,
                                    "warnings": list(rules.warnings), "loser_share": rules.loser_share,
                                    "rejected_reason": rules.rejected_reason},
                          "agent": None if agent is None else agent.model_dump(mode="json")}, scope=scope)


def llm_call(*, record: LLMCallRecord) -> Event:
    """One agent call through the LLM gateway: provider, model, tokens, cost, latency, success."""
    r = record
    return Event(type=EventType.LLM_CALL, at=r.at,
                 message=f"{r.agent} agent: {r.provider}/{r.model}, {r.prompt_tokens}+{r.completion_tokens} tokens, "
                 f"${r.cost_usd:.4f}, {r.latency_ms:.0f} ms{'' if r.ok else ' (failed)'}", severity=Severity.DEBUG,
                 cycle_id=r.cycle_id, symbol=None,
                 payload={"agent": r.agent, "provider": r.provider, "model": r.model, "prompt_tokens": r.prompt_tokens,
                          "completion_tokens": r.completion_tokens, "cost_usd": r.cost_usd,
                          "latency_ms": round(r.latency_ms, 3), "ok": r.ok}, scope=r.scope)


def llm_decisions(*, at: datetime, scope: str, cycle_id: str, reuse: bool, asked: Mapping[str, str],
                  reused: Mapping[str, str], skipped: Sequence[str]) -> Event:
    """What a cycle asked the agents about: the symbols asked (with why), those whose earlier decision was reused
    (with when it was made) and those the cheap filters kept from the agents."""
    counts = {"asked": len(asked), "reused": len(reused), "skipped_by_filters": len(skipped)}
    symbols = {**{s: {"decision": "asked", "reason": r} for s, r in asked.items()},
               **{s: {"decision": "reused", "reason": r} for s, r in reused.items()}}
    return Event(type=EventType.LLM_DECISIONS, at=at,
                 message=f"agents asked about {counts['asked']} symbols, {counts['reused']} earlier decisions "
                 f"reused, {counts['skipped_by_filters']} symbols skipped by the cheap filters"
                 f"{'' if reuse else ' (reuse off)'}", severity=Severity.DEBUG, cycle_id=cycle_id, symbol=None,
                 payload={**counts, "reuse": reuse, "symbols": dict(sorted(symbols.items())),
                          "skipped": sorted(skipped)}, scope=scope)
