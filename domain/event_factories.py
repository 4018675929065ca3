"""Keyword constructors of the events a trading cycle writes, one per kind, each with its message, severity and
payload keys in one place (alert templates, the API and tests read them). The stages' DEBUG events (market
conditions, recall, risk, validation, LLM calls) are in `domain.stage_events`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.breaker import ResumeCheck, Trip
from domain.events import Event, EventType, Severity
from domain.models.trading import Fill, OrderRequest
from domain.risk.limits import LimitAdjustment
from domain.verdict import Verdict


def cycle_started(*, at: datetime, scope: str, cycle_id: str, kind: str, symbol: str | None = None) -> Event:
    """A cycle began (DEBUG)."""
    return Event(type=EventType.CYCLE_STARTED, at=at, message=f"{kind} cycle started", severity=Severity.DEBUG,
                 cycle_id=cycle_id, symbol=symbol, payload={"kind": kind}, scope=scope)


def cycle_skipped(*, at: datetime, scope: str, cycle_id: str, kind: str, reason: str,
                  symbol: str | None = None) -> Event:
    """A cycle did nothing (WARNING), e.g. because another cycle held the trading lock."""
    return Event(type=EventType.CYCLE_SKIPPED, at=at, message=f"{kind} cycle skipped: {reason}",
                 severity=Severity.WARNING, cycle_id=cycle_id, symbol=symbol, payload={"reason": reason}, scope=scope)


def cycle_paused(*, at: datetime, scope: str, cycle_id: str, by: str, reason: str,
                 symbol: str | None = None) -> Event:
    """Trading is paused: the cycle only reconciled, protected positions and took rule exits (INFO)."""
    return Event(type=EventType.CYCLE_SKIPPED, at=at,
                 message=f"trading paused by {by}{': ' + reason if reason else ''}; only reconciliation, protective "
                 "stops and rule exits ran", severity=Severity.INFO, cycle_id=cycle_id, symbol=symbol,
                 payload={"reason": "paused"}, scope=scope)


def cycle_failed(*, at: datetime, scope: str, cycle_id: str, kind: str, error: str,
                 symbol: str | None = None) -> Event:
    """A cycle raised and was rolled back (CRITICAL)."""
    return Event(type=EventType.SYSTEM_ERROR, at=at, message=f"cycle {cycle_id} failed and was rolled back: {error}",
                 severity=Severity.CRITICAL, cycle_id=cycle_id, symbol=symbol,
                 payload={"error": error, "kind": kind}, scope=scope)


def breaker_eligible(*, at: datetime, scope: str, cycle_id: str, check: ResumeCheck) -> Event:
    """The tripped breaker's shadow record justifies a resume; a person has to approve it (WARNING)."""
    return Event(type=EventType.BREAKER_ELIGIBLE, at=at,
                 message="circuit breaker is eligible to resume; waiting for manual approval "
                 "(quorum breaker resume --approve)", severity=Severity.WARNING, cycle_id=cycle_id, symbol=None,
                 payload={"drawdown": check.drawdown, "win_streak": check.win_streak, "sharpe_7d": check.sharpe_7d},
                 scope=scope)


def breaker_tripped(*, trip: Trip, scope: str, cycle_id: str | None) -> Event:
    """The circuit breaker tripped (CRITICAL), at the time of the trip."""
    return Event(type=EventType.BREAKER_TRIPPED, at=trip.at,
                 message=f"circuit breaker tripped ({trip.trigger}): {trip.reason}; new entries blocked, exits and "
                 "stops still run, decisions continue in shadow mode", severity=Severity.CRITICAL, cycle_id=cycle_id,
                 symbol=None, payload={"trigger": trip.trigger, "reason": trip.reason}, scope=scope)


def reconciliation_difference(*, at: datetime, scope: str, cycle_id: str | None, kind: str, detail: str,
                              symbol: str | None = None, client_order_id: str | None = None) -> Event:
    """Something the database did not know or got wrong about the broker (WARNING)."""
    return Event(type=EventType.RECONCILIATION_DIFF, at=at, message=detail, severity=Severity.WARNING,
                 cycle_id=cycle_id, symbol=symbol,
                 payload={"kind": kind, "detail": detail, "client_order_id": client_order_id}, scope=scope)


def position_adopted(*, at: datetime, scope: str, cycle_id: str | None, symbol: str, qty: Decimal) -> Event:
    """A position held at the broker without an open trade in Quorum was adopted (WARNING)."""
    return Event(type=EventType.RECONCILIATION_DIFF, at=at,
                 message=f"{symbol}: position of {qty} held at the broker without an open trade in Quorum — adopted "
                 "and protected", severity=Severity.WARNING, cycle_id=cycle_id, symbol=symbol,
                 payload={"kind": "position_adopted"}, scope=scope)


def fill_adopted(*, fill: Fill, scope: str, cycle_id: str | None) -> Event:
    """A buy fill without a pending entry: its position was adopted (WARNING), at the time of the fill."""
    return Event(type=EventType.RECONCILIATION_DIFF, at=fill.at,
                 message=f"buy fill of {fill.qty} {fill.symbol} without a pending entry (sent by a cycle that did "
                 "not commit, or not by Quorum): position adopted, protected by the broker's stop order or the "
                 "default stop", severity=Severity.WARNING, cycle_id=cycle_id, symbol=fill.symbol,
                 payload={"kind": "adopted_fill", "client_order_id": fill.client_order_id}, scope=scope)


def order_filled(*, fill: Fill, scope: str, cycle_id: str | None) -> Event:
    """A fill booked from the broker (INFO), at the time of the fill."""
    return Event(type=EventType.ORDER_FILLED, at=fill.at,
                 message=f"filled {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} (fee {fill.fee})",
                 severity=Severity.INFO, cycle_id=cycle_id, symbol=fill.symbol,
                 payload={"client_order_id": fill.client_order_id, "qty": str(fill.qty), "price": str(fill.price),
                          "fee": str(fill.fee)}, scope=scope)


def stop_triggered(*, fill: Fill, scope: str, cycle_id: str | None) -> Event:
    """A protective stop (the broker's or Quorum's) sold a position (WARNING), at the time of the fill."""
    return Event(type=EventType.STOP_TRIGGERED, at=fill.at,
                 message=f"stop filled: sold {fill.qty} {fill.symbol} at {fill.price}", severity=Severity.WARNING,
                 cycle_id=cycle_id, symbol=fill.symbol, payload={"price": str(fill.price)}, scope=scope)


def order_submitted(*, at: datetime, scope: str, cycle_id: str, request: OrderRequest,
                    broker_order_id: str) -> Event:
    """The broker accepted an entry or exit order (INFO)."""
    r = request
    return Event(type=EventType.ORDER_SUBMITTED, at=at,
                 message=f"{r.side.value} {r.qty} {r.symbol} ({'fractional' if r.fractional else 'whole shares'}, "
                 f"{r.time_in_force.value}; stop {r.stop_price})", severity=Severity.INFO, cycle_id=cycle_id,
                 symbol=r.symbol, payload={"client_order_id": r.client_order_id, "broker_order_id": broker_order_id,
                                           "qty": str(r.qty), "side": r.side.value,
                                           "stop_price": None if r.stop_price is None else str(r.stop_price)},
                 scope=scope)


def order_rejected(*, at: datetime, scope: str, cycle_id: str, request: OrderRequest, error: Exception) -> Event:
    """The broker refused an entry or exit order (WARNING)."""
    r = request
    return Event(type=EventType.ORDER_REJECTED, at=at,
                 message=f"broker rejected {r.side.value} {r.qty} {r.symbol}: {error}", severity=Severity.WARNING,
                 cycle_id=cycle_id, symbol=r.symbol,
                 payload={"client_order_id": r.client_order_id, "error": type(error).__name__}, scope=scope)


def protective_stop_placed(*, at: datetime, scope: str, cycle_id: str | None, request: OrderRequest,
                           broker_order_id: str) -> Event:
    """Quorum placed a GTC stop for a position no live stop order covered (WARNING)."""
    r = request
    return Event(type=EventType.ORDER_SUBMITTED, at=at,
                 message=f"protective GTC stop for {r.qty} {r.symbol} at {r.stop_price} (no live stop order covered "
                 "the position)", severity=Severity.WARNING, cycle_id=cycle_id, symbol=r.symbol,
                 payload={"kind": "protective_stop", "client_order_id": r.client_order_id,
                          "broker_order_id": broker_order_id, "stop_price": str(r.stop_price), "qty": str(r.qty)},
                 scope=scope)


def protective_stop_refused(*, at: datetime, scope: str, cycle_id: str | None, symbol: str, stop_price: Decimal,
                            error: Exception) -> Event:
    """The broker refused a protective stop order; Quorum keeps the stop itself (WARNING)."""
    return Event(type=EventType.ORDER_REJECTED, at=at,
                 message=f"{symbol}: the broker refused a protective stop at {stop_price} ({error}); Quorum keeps the "
                 "stop itself and checks it every cycle", severity=Severity.WARNING, cycle_id=cycle_id,
                 symbol=symbol, payload={"kind": "protective_stop", "error": type(error).__name__}, scope=scope)


def exit_not_sent(*, at: datetime, scope: str, cycle_id: str, symbol: str) -> Event:
    """An exit found its position already closed at the broker (by its stop or take profit) (INFO)."""
    return Event(type=EventType.PROPOSAL_REJECTED, at=at,
                 message=f"{symbol}: exit not sent, the position was already closed", severity=Severity.INFO,
                 cycle_id=cycle_id, symbol=symbol, payload={"kind": "already_closed"}, scope=scope)


def shadow_fill(*, at: datetime, scope: str, cycle_id: str, fill: Fill) -> Event:
    """A fill on the shadow book while the breaker is tripped (INFO)."""
    return Event(type=EventType.SHADOW_FILL, at=at,
                 message=f"shadow {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} (breaker tripped: no order "
                 "sent)", severity=Severity.INFO, cycle_id=cycle_id, symbol=fill.symbol,
                 payload={"client_order_id": fill.client_order_id, "qty": str(fill.qty), "price": str(fill.price)},
                 scope=scope)


def limits_applied(*, at: datetime, scope: str, cycle_id: str, symbol: str,
                   adjustments: Iterable[LimitAdjustment]) -> Event:
    """Hard limits changed a proposal (INFO)."""
    adjusted = list(adjustments)
    return Event(type=EventType.LIMIT_APPLIED, at=at,
                 message=f"{symbol}: " + "; ".join(f"{a.limit}: {a.detail}" for a in adjusted),
                 severity=Severity.INFO, cycle_id=cycle_id, symbol=symbol,
                 payload={"limits": [a.limit for a in adjusted]}, scope=scope)


def proposal_rejected(*, at: datetime, scope: str, cycle_id: str, symbol: str, action: str, reason: str,
                      decision: Mapping[str, Any], limit: str | None) -> Event:
    """A validator, a hard limit or the broker refused a proposal (INFO); the payload is the whole decision."""
    return Event(type=EventType.PROPOSAL_REJECTED, at=at, message=f"{symbol} {action} rejected: {reason}",
                 severity=Severity.INFO, cycle_id=cycle_id, symbol=symbol, payload={**decision, "limit": limit},
                 scope=scope)


def decision_made(*, at: datetime, scope: str, cycle_id: str, symbol: str, verdict: Verdict, reasoning: str,
                  decision: Mapping[str, Any]) -> Event:
    """What the cycle decided for a symbol (DEBUG for a HOLD, else INFO); the payload is the whole decision."""
    return Event(type=EventType.SIGNAL, at=at, message=f"{symbol}: {verdict} — {reasoning}",
                 severity=Severity.DEBUG if verdict is Verdict.HOLD else Severity.INFO, cycle_id=cycle_id,
                 symbol=symbol, payload=dict(decision), scope=scope)


def llm_budget_exhausted(*, at: datetime, scope: str, cycle_id: str | None, cap_usd: float,
                         spent_usd: float) -> Event:
    """The daily LLM spending cap was reached; agents hold (WARNING)."""
    return Event(type=EventType.LLM_BUDGET_EXHAUSTED, at=at,
                 message=f"daily LLM cap ${cap_usd:.2f} reached (spent ${spent_usd:.4f}); agents HOLD",
                 severity=Severity.WARNING, cycle_id=cycle_id, symbol=None,
                 payload={"cap_usd": cap_usd, "spent_usd": spent_usd}, scope=scope)


def llm_cap_skipped(*, at: datetime, scope: str, cycle_id: str, symbols: Sequence[str], asked: Sequence[str],
                    needed_usd: float, held_usd: float, cap_usd: float, spent_usd: float) -> Event:
    """The daily LLM cap could not carry `symbols` through every agent stage, so the agents were not asked about
    them (their exits are the free rules'; no entry). INFO: the day's one alert is `llm_budget_exhausted`."""
    return Event(type=EventType.LLM_CAP_SKIPPED, at=at,
                 message=f"skipped: daily LLM cap - {len(symbols)} symbols not asked ({', '.join(symbols)}): their "
                 f"signal, risk and validator calls need up to ${needed_usd:.4f}, ${held_usd:.4f} held for "
                 f"{len(asked)} symbols; spent ${spent_usd:.4f} of ${cap_usd:.4f}",
                 severity=Severity.INFO, cycle_id=cycle_id, symbol=None,
                 payload={"skipped": list(symbols), "asked": list(asked), "needed_usd": needed_usd,
                          "held_usd": held_usd, "cap_usd": cap_usd, "spent_usd": spent_usd}, scope=scope)


def llm_failed(*, at: datetime, scope: str, cycle_id: str | None, agent: str, error: str) -> Event:
    """An agent's LLM call failed; the agent holds (WARNING)."""
    return Event(type=EventType.LLM_FAILED, at=at, message=f"{agent} agent failed, holding: {error}",
                 severity=Severity.WARNING, cycle_id=cycle_id, symbol=None, payload={"agent": agent, "error": error},
                 scope=scope)
