"""Go-live: the record that lets the live configuration start, and the gates judged from what is measured (the
live account against the caps, the paper campaign, the evals). Nothing here does I/O.

A go-live record is written by `quorum golive` when every gate passed. It names the live account by a fingerprint
of its API key, and it is valid for `RECORD_MAX_AGE` until live trading first starts with it (it is then
activated and stays valid for that account).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from application.preflight import CheckResult, failed, passed
from domain.models.account import Account
from domain.paper import CampaignStatus
from domain.ports.repositories import EvalRunRecord
from domain.risk.config import RiskSettings

RECORD_MAX_AGE = timedelta(days=7)
MIN_CAMPAIGN_SESSIONS = 10
EVALS_MAX_AGE = timedelta(days=3)
CAPITAL_TOLERANCE = Decimal("0.10")
MARGIN_MIN_EQUITY = Decimal(2000)
"""FINRA's minimum equity for a margin account: below it, Alpaca gives no leverage."""
PASSING_EVAL_VERDICTS = ("ok", "noise")
EVALS_NOW = ("queue an eval run with `curl -X POST -H \"X-API-Key: $QUORUM_API_KEY\" 127.0.0.1:8000/api/evals/run` "
             "(`quorum serve` running) or let the nightly evals run (02:00 New York time)")


@dataclass(frozen=True, slots=True)
class GateOutcome:
    """One gate's result as kept in the record."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class GoLiveRecord:
    """Who switched which account to live, when, on which gate results.

    Attributes:
        account: fingerprint of the live account's API key ("alpaca-live:<12 hex>").
        equity, cash, currency: the live account when the gates ran.
        at: when every gate passed.
        by: who ran `quorum golive`.
        gates: every gate's outcome.
        activated_at: when live trading first started with this record (None: not yet).
    """

    account: str
    equity: Decimal
    cash: Decimal
    currency: str
    at: datetime
    by: str
    gates: tuple[GateOutcome, ...] = field(default_factory=tuple)
    activated_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict (Decimals as strings, times ISO 8601)."""
        return {"account": self.account, "equity": str(self.equity), "cash": str(self.cash),
                "currency": self.currency, "at": self.at.isoformat(), "by": self.by,
                "gates": [{"name": g.name, "ok": g.ok, "detail": g.detail} for g in self.gates],
                "activated_at": self.activated_at.isoformat() if self.activated_at else None}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> GoLiveRecord:
        """The record of `to_json` (KeyError/ValueError on a damaged one)."""
        activated = d.get("activated_at")
        return cls(str(d["account"]), Decimal(d["equity"]), Decimal(d["cash"]), str(d["currency"]),
                   datetime.fromisoformat(d["at"]), str(d["by"]),
                   tuple(GateOutcome(str(g["name"]), bool(g["ok"]), str(g["detail"])) for g in d.get("gates", ())),
                   datetime.fromisoformat(activated) if activated else None)

    def activated(self, at: datetime) -> GoLiveRecord:
        """This record, activated at `at` (unchanged when it already was)."""
        return self if self.activated_at is not None else replace(self, activated_at=at)


def record_refusal(record: GoLiveRecord | None, *, account: str, now: datetime,
                   max_age: timedelta = RECORD_MAX_AGE) -> str | None:
    """Why `record` does not allow live trading on `account` at `now`, or None when it does."""
    if record is None:
        return "no go-live record: every `quorum golive` gate must pass before live trading"
    if record.account != account:
        return f"the go-live record is for another account ({record.account}, these keys are {account})"
    if not all(g.ok for g in record.gates):
        return "the go-live record has failed gates"
    if record.activated_at is None and now - record.at > max_age:
        return (f"the go-live record of {record.at:%Y-%m-%d %H:%M} UTC is older than {max_age.days} days and was "
                "never used")
    return None


def account_gate(risk: RiskSettings, account: Account) -> CheckResult:
    """The live account against the configured starting capital and per-order caps.

    Fails when the account cannot trade, when QUORUM_RISK__STARTING_CAPITAL is more than 10% away from its equity,
    when one position at the cap would not fit in the cash (less the buying-power collar) or would be below the
    minimum order, or when the gross exposure asks for margin the account does not have.
    """
    eq, cash = account.equity, account.cash
    where = f"equity {eq:.2f} {account.currency}, cash {cash:.2f}, buying power {account.buying_power:.2f}"
    problems: list[str] = []
    hints: list[str] = []
    if account.trading_blocked or account.status.upper() != "ACTIVE":
        problems.append(f"the account cannot trade (status {account.status}, blocked {account.trading_blocked})")
        hints.append("resolve the account's status in the Alpaca dashboard")
    if account.currency != "USD":
        problems.append(f"the account is in {account.currency}, Quorum trades USD")
        hints.append("use a USD account")
    if eq <= 0:
        return failed(f"{where}: nothing to trade with", "fund the live account first")
    if abs(risk.starting_capital - eq) > eq * CAPITAL_TOLERANCE:
        problems.append(f"QUORUM_RISK__STARTING_CAPITAL={risk.starting_capital} is not the account's equity")
        hints.append(f"set QUORUM_RISK__STARTING_CAPITAL={eq.quantize(Decimal(1))}")
    position = eq * Decimal(str(risk.max_position_pct))
    room = cash * (1 - Decimal(str(risk.buying_power_collar_pct)))
    if position > room:
        problems.append(f"one position at QUORUM_RISK__MAX_POSITION_PCT={risk.max_position_pct} is {position:.2f} "
                        f"USD, more than the {room:.2f} USD of cash it can use")
        hints.append(f"set QUORUM_RISK__MAX_POSITION_PCT to at most {float(room / eq):.2f} or move cash in")
    if position < risk.min_order_notional:
        problems.append(f"one position at the cap ({position:.2f} USD) is below the minimum order "
                        f"{risk.min_order_notional} USD")
        hints.append("raise QUORUM_RISK__MAX_POSITION_PCT or fund the account")
    if risk.max_gross_exposure_pct > 1 and eq < MARGIN_MIN_EQUITY:
        problems.append(f"QUORUM_RISK__MAX_GROSS_EXPOSURE_PCT={risk.max_gross_exposure_pct} needs margin, which an "
                        f"account under {MARGIN_MIN_EQUITY} USD does not have")
        hints.append("set QUORUM_RISK__MAX_GROSS_EXPOSURE_PCT=1.0")
    if problems:
        return failed(f"{where}: " + "; ".join(problems), "; ".join(hints))
    return passed(f"{where}; one position at most {position:.2f} USD, {risk.max_new_orders_per_cycle} new orders "
                  f"a cycle, daily loss stop {risk.max_daily_loss_pct:.0%}")


def campaign_gate(status: CampaignStatus | None, *, min_sessions: int = MIN_CAMPAIGN_SESSIONS) -> CheckResult:
    """A paper campaign of at least `min_sessions` sessions that met every success criterion."""
    start = "start one with `quorum paper start --days 10` and let it run; `quorum paper status` shows the criteria"
    if status is None:
        return failed("no paper campaign recorded", start)
    c = status.campaign
    head = f"campaign {c.name!r}: {status.sessions}/{c.target_sessions} sessions"
    failing = [f"{k.name} ({k.detail})" for k in status.criteria if k.passed is not True]
    if c.target_sessions < min_sessions:
        return failed(f"{head}; a campaign of {c.target_sessions} sessions is too short",
                      f"run a campaign of at least {min_sessions} sessions: `quorum paper start --days {min_sessions}`")
    if not status.complete:
        return failed(f"{head}, not finished" + (f"; not met yet: {', '.join(failing)}" if failing else ""),
                      f"let it run {c.target_sessions - status.sessions} more sessions; `quorum paper status`")
    if failing:
        return failed(f"{head}; criteria not met: {', '.join(failing)}",
                      "fix what made these criteria fail, then run a new campaign (`quorum paper start`)")
    return passed(f"{head}, every criterion met ({', '.join(k.name for k in status.criteria)})")


def evals_gate(run: EvalRunRecord | None, *, now: datetime, max_age: timedelta = EVALS_MAX_AGE) -> CheckResult:
    """The latest eval run is recent and passed the regression gate."""
    if run is None:
        return failed("no eval run recorded", EVALS_NOW)
    head = f"latest eval run {run.id} ({run.kind}, {run.llm}) at {run.at:%Y-%m-%d %H:%M} UTC: {run.verdict}"
    if run.verdict not in PASSING_EVAL_VERDICTS:
        return failed(head, "see `quorum evals history` and docs/evals.md; fix the regression, then " + EVALS_NOW)
    if now - run.at > max_age:
        return failed(f"{head}, older than {max_age.days} days", EVALS_NOW)
    return passed(head)
