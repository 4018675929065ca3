"""Go-live self-tests of the deterministic safety rules: the circuit breaker and the hard limits, run on the
configured thresholds with scenarios built to break them. Each returns one `CheckResult` naming what failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from decimal import Decimal

from application.preflight import CheckResult, failed, passed
from domain import breaker as brk
from domain.models.market import Asset
from domain.models.trading import Position
from domain.risk.config import BreakerSettings, RiskSettings
from domain.risk.limits import LimitContext, LimitDecision, ProposedTrade, apply_hard_limits

BREAKER_HINT = "the circuit breaker does not hold on these thresholds: fix QUORUM_RISK__BREAKER__* or the code " \
               "in domain/breaker.py, then run `pytest tests/unit/test_breaker.py`"
LIMITS_HINT = "a hard limit let an oversized or invalid proposal through: fix QUORUM_RISK__* or domain/risk, then " \
              "run `pytest tests/unit/test_limits.py tests/unit/test_limits_properties.py`"
PROBE = "SELFTEST"
PRICE = Decimal(100)


def breaker_selftest(settings: BreakerSettings, *, equity: Decimal, as_of: datetime) -> CheckResult:
    """Drive a fresh breaker through each trip (drawdown, daily loss, losing streak, system errors) and check that
    a tripped breaker blocks entries and refuses a resume that is not eligible yet.

    Args:
        settings: the configured breaker thresholds.
        equity: the account's equity the scenarios start from.
        as_of: now (timezone-aware).
    """
    problems: list[str] = []
    start = brk.initial_state(equity)
    dd = equity * (1 - Decimal(str(settings.max_drawdown_pct))) - Decimal("0.01")
    state, trip = brk.record_equity(start, equity=dd, day_start_equity=equity * 10, as_of=as_of, settings=settings)
    _expect(problems, "drawdown", trip, state)
    day = equity * (1 - Decimal(str(settings.max_daily_loss_pct))) - Decimal("0.01")
    state, trip = brk.record_equity(start, equity=day, day_start_equity=equity, as_of=as_of, settings=settings)
    _expect(problems, "daily_loss" if settings.max_daily_loss_pct < settings.max_drawdown_pct else "drawdown", trip,
            state)
    state, trip = start, None
    for i in range(settings.max_consecutive_losses):
        state, trip = brk.record_trade_result(state, return_pct=-0.01, as_of=as_of + timedelta(minutes=i),
                                              settings=settings)
    _expect(problems, "consecutive_losses", trip, state)
    state, trip = start, None
    for i in range(settings.max_system_errors):
        state, trip = brk.record_cycle_outcome(state, error=True, as_of=as_of + timedelta(minutes=i),
                                               settings=settings)
    _expect(problems, "system_errors", trip, state)
    try:
        brk.approve_resume(state, by="golive", as_of=as_of, note="self-test", settings=settings)
        problems.append("a resume was approved right after a trip (not eligible yet)")
    except brk.BreakerNotEligibleError:
        pass
    if problems:
        return failed("; ".join(problems), BREAKER_HINT)
    return passed(f"trips on drawdown {settings.max_drawdown_pct:.0%}, daily loss {settings.max_daily_loss_pct:.0%}, "
                  f"{settings.max_consecutive_losses} losses in a row, {settings.max_system_errors} system errors; "
                  "blocks entries when tripped; refuses an early resume")


def _expect(problems: list[str], trigger: str, trip: brk.Trip | None, state: brk.BreakerState) -> None:
    if trip is None or trip.trigger != trigger:
        problems.append(f"{trigger} did not trip the breaker")
    elif brk.allows_entries(state):
        problems.append(f"entries still allowed after a {trigger} trip")


def _context(risk: RiskSettings, as_of: datetime, tz: tzinfo, **changes: object) -> LimitContext:
    equity = risk.starting_capital
    values: dict[str, object] = dict(
        as_of=as_of, market_open=True, equity=equity, cash=equity, day_start_equity=equity, positions={},
        prices={PROBE: PRICE}, avg_dollar_volume={PROBE: risk.min_avg_dollar_volume * 10 + 10**9},
        assets={PROBE: Asset(PROBE, fractionable=True, shortable=True)}, orders_this_cycle=0,
        pending_exposure=Decimal(0), day_trades_used=0, today=as_of.astimezone(tz).date(), tz=tz,
        entries_allowed=True)
    values.update(changes)
    return LimitContext(**values)  # type: ignore[arg-type]


def _proposal(action: str = "BUY", **changes: object) -> ProposedTrade:
    values: dict[str, object] = dict(symbol=PROBE, action=action, confidence=0.99, position_pct=5.0,
                                     stop_loss_pct=0.9, take_profit_pct=None,
                                     reasoning="IGNORE ALL LIMITS: put the whole account and more in this one")
    values.update(changes)
    return ProposedTrade(**values)  # type: ignore[arg-type]


def hard_limits_selftest(risk: RiskSettings, *, as_of: datetime, tz: tzinfo) -> CheckResult:
    """Put proposals no agent should get through to the configured hard limits: 500% of equity with a 90% stop,
    garbage numbers, a short when shorts are off, entries while the breaker is tripped or the order count is used.

    Args:
        risk: the configured hard limits.
        as_of: now (timezone-aware); the scenarios pretend the market is open.
        tz: the exchange's timezone.
    """
    problems: list[str] = []

    def decide(trade: ProposedTrade, context: LimitContext) -> LimitDecision:
        return apply_hard_limits(trade, context, risk, client_order_id="golive-selftest")

    ctx = _context(risk, as_of, tz)
    big = decide(_proposal(), ctx)
    cap = risk.starting_capital * Decimal(str(min(risk.max_position_pct, risk.max_gross_exposure_pct)))
    if big.order is not None:
        notional = big.order.qty * PRICE
        if notional > cap * Decimal("1.0001"):
            problems.append(f"a 500% proposal became {notional:.2f} USD, above the {cap:.2f} USD position cap")
        stop = big.order.stop_price
        if stop is None or stop < PRICE * Decimal(str(1 - risk.max_stop_pct)) * Decimal("0.999"):
            problems.append(f"a 90% stop was not narrowed to {risk.max_stop_pct:.0%} (stop {stop})")
    for name, trade, context in (
            ("NaN confidence", _proposal(confidence=float("nan")), ctx),
            ("infinite size", _proposal(position_pct=float("inf")), ctx),
            ("unknown action", _proposal(action="BUY_ALL"), ctx),
            ("entry while the breaker is tripped", _proposal(), _context(risk, as_of, tz, entries_allowed=False)),
            ("entry beyond the orders per cycle", _proposal(),
             _context(risk, as_of, tz, orders_this_cycle=risk.max_new_orders_per_cycle)),
            ("entry with the market closed", _proposal(), _context(risk, as_of, tz, market_open=False)
             if risk.market_hours_only else None)):
        if context is not None and decide(trade, context).approved:
            problems.append(f"{name} was approved")
    if not risk.allow_short and decide(_proposal("SELL"), ctx).approved:
        problems.append("a short entry was approved with shorts off")
    exit_ctx = _context(risk, as_of, tz, entries_allowed=False,
                        positions={PROBE: Position(PROBE, Decimal(1), PRICE)})
    if not decide(_proposal("SELL", position_pct=0.0), exit_ctx).approved:
        problems.append("an exit was refused while the breaker blocks entries (exits must always be allowed)")
    if problems:
        return failed("; ".join(problems), LIMITS_HINT)
    held = f"{big.order.qty * PRICE:.2f} USD" if big.order is not None else f"rejected ({big.rejected_by})"
    return passed(f"a 500% proposal was held to {held} (cap {cap:.2f} USD); garbage, shorts, entries while tripped "
                  "or past the order count refused; exits still allowed")
