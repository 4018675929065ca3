"""Hard limits: the last word on every proposal before an order reaches the broker.

Proposals come from LLM agents and may hold anything (NaN, 1e9, unknown
symbols, lower-case actions). Nothing in a proposal can widen a limit: garbage
is rejected, oversize requests are clamped, and every clamp is recorded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from decimal import Decimal, localcontext

from domain.models.market import Asset
from domain.models.trading import OrderRequest, Position, Side, TimeInForce
from domain.risk.config import RiskSettings
from domain.risk.pdt import opened_today, pdt_restricted
from domain.risk.sizing import (
    entry_caps,
    pct_text,
    price_text,
    protective_levels,
    size_position,
    to_decimal,
    usd,
)

ACTIONS = frozenset({"BUY", "SELL", "HOLD"})


@dataclass(frozen=True)
class ProposedTrade:
    """Raw values proposed by the agents for one symbol (untrusted).

    Attributes:
        symbol: ticker as the agent wrote it.
        action: "BUY", "SELL" or "HOLD" in any case, or garbage.
        confidence: 0..1 as proposed.
        position_pct: wanted position as a share of equity.
        stop_loss_pct: wanted stop distance as a fraction of the price, or None.
        take_profit_pct: wanted take-profit distance as a fraction of the price, or None.
        reasoning: the agents' explanation.
        is_stop_exit: True when Quorum's own stop rule (not an agent) wants the position closed.
    """

    symbol: str
    action: str
    confidence: float
    position_pct: float
    stop_loss_pct: float | None
    take_profit_pct: float | None
    reasoning: str
    is_stop_exit: bool = False


@dataclass(frozen=True)
class LimitContext:
    """The account and market as the hard limits see them at `as_of`.

    Attributes:
        cash: the account's cash before this cycle's approved entries (they are `pending_exposure`,
            which the limits deduct from cash with slippage; do not deduct them twice).
        pending_exposure: gross value of the entries already approved earlier in this cycle.
        open_entries: symbol -> value of the buy orders still open at the broker (unfilled entries of
            earlier cycles): no second entry is sent for them, and their value counts against cash and
            gross exposure.
        cooldowns: symbol -> the earliest time a new entry may be made (after a stop exit).
        buying_power: what the broker would accept for new buys (already net of its open orders), or None.
        orders_this_cycle: new entry orders already approved in this cycle.
        day_trades_used: day trades in the last 5 business days (see `domain.risk.pdt`).
        entries_allowed: False when the circuit breaker is tripped.
        entry_block_reason: why entries are not allowed.
    """

    as_of: datetime
    market_open: bool
    equity: Decimal
    cash: Decimal
    day_start_equity: Decimal
    positions: Mapping[str, Position]
    prices: Mapping[str, Decimal]
    avg_dollar_volume: Mapping[str, Decimal]
    assets: Mapping[str, Asset]
    orders_this_cycle: int
    pending_exposure: Decimal
    day_trades_used: int
    today: date
    tz: tzinfo
    entries_allowed: bool
    entry_block_reason: str = ""
    open_entries: Mapping[str, Decimal] = field(default_factory=dict)
    cooldowns: Mapping[str, datetime] = field(default_factory=dict)
    buying_power: Decimal | None = None

    @property
    def open_entry_value(self) -> Decimal:
        """Total value of the open buy orders."""
        return sum(self.open_entries.values(), Decimal(0))


@dataclass(frozen=True)
class LimitAdjustment:
    """A hard limit that changed a proposal (stable snake_case `limit`, human `detail`)."""

    limit: str
    detail: str


@dataclass(frozen=True)
class LimitDecision:
    """Outcome of the hard limits: an order, a rejection, or nothing to do (HOLD).

    Exactly one of `order` and `rejected_by` is set, except for a HOLD (both None,
    reason "hold").
    """

    order: OrderRequest | None
    adjustments: tuple[LimitAdjustment, ...]
    rejected_by: str | None
    reason: str

    @property
    def approved(self) -> bool:
        """Whether an order should be sent."""
        return self.order is not None


class LimitRejection(Exception):
    """Raised inside the hard limits to reject a proposal; never escapes `apply_hard_limits`."""

    def __init__(self, limit: str, reason: str) -> None:
        super().__init__(reason)
        self.limit = limit
        self.reason = reason


def apply_hard_limits(
    trade: ProposedTrade, ctx: LimitContext, settings: RiskSettings, *, client_order_id: str
) -> LimitDecision:
    """Turn a proposal into an order that respects every hard limit, or reject it.

    Exits (SELL of a held long, BUY of a held short) close the whole position and
    are allowed even when entries are blocked. Entries pass every entry rule, are
    sized under the position, gross-exposure and cash caps, and always carry a stop.

    Args:
        trade: the untrusted proposal.
        ctx: account and market state, including what this cycle already approved.
        settings: the hard limits.
        client_order_id: deterministic id for the order.

    Returns:
        The decision; it never raises, whatever `trade` holds.
    """
    adjustments: list[LimitAdjustment] = []
    try:
        with localcontext() as dctx:
            dctx.prec = 60
            order = _decide(trade, ctx, settings, client_order_id, adjustments)
    except LimitRejection as rejection:
        return LimitDecision(None, tuple(adjustments), rejection.limit, rejection.reason)
    except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError) as exc:
        return LimitDecision(None, tuple(adjustments), "internal_check", f"proposal could not be checked: {exc!r}")
    if order is None:
        return LimitDecision(None, (), None, "hold")
    return LimitDecision(order, tuple(adjustments), None, order.reason)


def normalise_action(action: object) -> str | None:
    """Upper-cased, stripped action when it is BUY, SELL or HOLD; None otherwise."""
    if not isinstance(action, str):
        return None
    cleaned = action.strip().upper()
    return cleaned if cleaned in ACTIONS else None


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _valid_price(px: object) -> bool:
    return isinstance(px, Decimal) and px.is_finite() and px > 0


def _with_reasoning(text: str, trade: ProposedTrade) -> str:
    if isinstance(trade.reasoning, str) and trade.reasoning.strip():
        return f"{text} — {trade.reasoning.strip()[:160]}"
    return text


def _decide(
    trade: ProposedTrade, ctx: LimitContext, settings: RiskSettings, cid: str, adjustments: list[LimitAdjustment]
) -> OrderRequest | None:
    action = normalise_action(trade.action)
    if action is None:
        raise LimitRejection("invalid_action", f"unknown action {str(trade.action)[:40]!r}")
    if action == "HOLD" and not trade.is_stop_exit:
        return None
    symbol = trade.symbol.strip().upper() if isinstance(trade.symbol, str) else ""
    if not symbol:
        raise LimitRejection("invalid_symbol", f"blank or invalid symbol {str(trade.symbol)[:40]!r}")
    if not isinstance(cid, str) or not cid.strip():
        raise LimitRejection("invalid_client_order_id", "client_order_id must not be blank")
    if not trade.is_stop_exit and not (_finite(trade.confidence) and _finite(trade.position_pct)):
        raise LimitRejection(
            "invalid_number", f"{symbol}: confidence {trade.confidence!r}, position_pct {trade.position_pct!r}"
        )
    if settings.market_hours_only and not ctx.market_open:
        raise LimitRejection("market_closed", f"{action} {symbol}: orders are only sent while the market is open")
    position = ctx.positions.get(symbol)
    held = position.qty if position is not None else Decimal(0)
    if not held.is_finite():
        raise LimitRejection("invalid_context", f"{symbol}: held quantity {held} is not a number")
    if position is not None and ((action == "SELL" and held > 0) or (action == "BUY" and held < 0)):
        return _exit(trade, ctx, settings, symbol, position, cid, adjustments)
    if trade.is_stop_exit:
        raise LimitRejection("invalid_stop_exit", f"stop exit of {symbol} ({action}) does not close a held position")
    return _entry(trade, ctx, settings, symbol, cid, action == "BUY", adjustments)


def _exit(
    trade: ProposedTrade,
    ctx: LimitContext,
    settings: RiskSettings,
    symbol: str,
    position: Position,
    cid: str,
    adjustments: list[LimitAdjustment],
) -> OrderRequest:
    if pdt_restricted(ctx.equity, ctx.day_trades_used, settings) and opened_today(position, today=ctx.today, tz=ctx.tz):
        used = f"{ctx.day_trades_used} day trades already used in 5 business days"
        if not trade.is_stop_exit:
            raise LimitRejection(
                "pdt",
                f"closing {symbol} today would be a day trade with {used} and equity {usd(ctx.equity)} below "
                f"{usd(settings.pdt_equity_threshold)}; hold it overnight or let its stop close it",
            )
        adjustments.append(LimitAdjustment("pdt_stop_exit", f"stop exit of {symbol} taken although {used}"))
    qty = abs(position.qty)
    side = Side.SELL if position.qty > 0 else Side.BUY
    px = ctx.prices.get(symbol)
    value = f" ≈ {usd(qty * px)}" if px is not None and _valid_price(px) else ""
    kind = "stop exit" if trade.is_stop_exit else "exit"
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=side,
        qty=qty,
        fractional=qty != qty.to_integral_value(),
        reason=_with_reasoning(f"{kind}: {side.value} all {qty.normalize():f} {symbol}{value}", trade),
    )


def _entry(
    trade: ProposedTrade,
    ctx: LimitContext,
    settings: RiskSettings,
    symbol: str,
    cid: str,
    long: bool,
    adjustments: list[LimitAdjustment],
) -> OrderRequest:
    asset, px = _check_entry(trade, ctx, settings, symbol, long)
    held_value, gross_value = _exposures(ctx, symbol)
    open_value = ctx.open_entry_value
    cash = ctx.cash - open_value * (1 + to_decimal(settings.buying_power_collar_pct))
    if ctx.buying_power is not None and ctx.buying_power.is_finite():
        cash = min(cash, ctx.buying_power)
    caps = entry_caps(
        price=px,
        equity=ctx.equity,
        cash=cash,
        pending_exposure=ctx.pending_exposure,
        held_value=held_value,
        gross_value=gross_value + open_value,
        settings=settings,
    )
    target = to_decimal(trade.position_pct) * ctx.equity
    for cap in caps:
        if cap.cap <= 0:
            raise LimitRejection(cap.limit, f"{symbol}: no room for a new entry ({cap.why})")
        if target > cap.cap:
            adjustments.append(LimitAdjustment(cap.limit, f"{symbol} {usd(target)} -> {usd(cap.cap)} ({cap.why})"))
            target = cap.cap
    sizing = size_position(
        target, px, fractionable=asset.fractionable and long, min_notional=settings.min_order_notional
    )
    if sizing.qty is None:
        raise LimitRejection("too_small", f"{symbol}: {sizing.skipped_reason}")
    for cap in caps:
        if sizing.notional > cap.cap:
            raise LimitRejection("internal_check", f"{symbol}: {usd(sizing.notional)} exceeds the {cap.limit} cap")
    levels = protective_levels(px, trade.stop_loss_pct, trade.take_profit_pct, long=long, settings=settings)
    adjustments.extend(LimitAdjustment(limit, f"{symbol}: {detail}") for limit, detail in levels.changes)
    stop, take_profit = levels.stop_price, levels.take_profit_price
    if stop is None:
        raise LimitRejection("stop_price", f"{symbol}: no stop price on the tick grid fits the stop limits")
    text = (
        f"{'long' if long else 'short'} entry: {sizing.qty.normalize():f} {symbol} ≈ {usd(sizing.notional)} "
        f"at {price_text(px)}, stop {price_text(stop)}"
    )
    if take_profit is not None:
        text += f", take profit {price_text(take_profit)}"
    return OrderRequest(
        client_order_id=cid,
        symbol=symbol,
        side=Side.BUY if long else Side.SELL,
        qty=sizing.qty,
        stop_price=stop,
        take_profit_price=take_profit,
        time_in_force=TimeInForce.DAY if sizing.fractional else TimeInForce.GTC,
        fractional=sizing.fractional,
        reason=_with_reasoning(f"{text}, confidence {trade.confidence:.2f}", trade),
    )


def _check_entry(
    trade: ProposedTrade, ctx: LimitContext, settings: RiskSettings, symbol: str, long: bool
) -> tuple[Asset, Decimal]:
    _check_entry_permitted(ctx, settings, symbol, long)
    asset, px = _tradable_asset(ctx, symbol, long)
    _check_account_numbers(ctx)
    _check_proposal_quality(trade, ctx, settings, symbol, px)
    _check_account_limits(ctx, settings)
    return asset, px


def _check_entry_permitted(ctx: LimitContext, settings: RiskSettings, symbol: str, long: bool) -> None:
    """Reject when entries are blocked, shorts are off, an entry is still open, or the symbol is cooling down."""
    if not ctx.entries_allowed:
        raise LimitRejection(
            "entries_blocked", f"new entries are blocked: {ctx.entry_block_reason or 'no reason given'}"
        )
    if not long and not settings.allow_short:
        raise LimitRejection("short_not_allowed", f"SELL {symbol} without a long position would open a short")
    if symbol in ctx.open_entries:
        raise LimitRejection(
            "entry_pending",
            f"{symbol}: an entry order of {usd(ctx.open_entries[symbol])} is still open at the broker; "
            "no second entry is sent",
        )
    until = ctx.cooldowns.get(symbol)
    if until is not None and until > ctx.as_of:
        raise LimitRejection(
            "reentry_cooldown",
            f"{symbol}: its stop closed a position recently; no new entry before {until.isoformat()}",
        )


def _tradable_asset(ctx: LimitContext, symbol: str, long: bool) -> tuple[Asset, Decimal]:
    """The asset and price of `symbol`, rejected when either is missing or the asset cannot be traded this way."""
    asset, px = ctx.assets.get(symbol), ctx.prices.get(symbol)
    if asset is None or px is None:
        raise LimitRejection("unknown_symbol", f"{symbol} has no {'asset record' if asset is None else 'price'}")
    if not _valid_price(px):
        raise LimitRejection("invalid_price", f"{symbol}: price {px!r} is not a positive number")
    if not long and not asset.shortable:
        raise LimitRejection("not_shortable", f"{symbol} cannot be sold short")
    if not asset.tradable or asset.status.lower() != "active":
        raise LimitRejection("not_tradable", f"{symbol} is not tradable (status {asset.status})")
    return asset, px


def _check_account_numbers(ctx: LimitContext) -> None:
    """Reject when equity, cash or pending exposure is not a number, or equity is not positive."""
    if (
        not all(v.is_finite() for v in (ctx.equity, ctx.cash, ctx.day_start_equity, ctx.pending_exposure))
        or min(ctx.equity, ctx.day_start_equity) <= 0
    ):
        raise LimitRejection(
            "invalid_context", f"equity {ctx.equity}, cash {ctx.cash}, day start {ctx.day_start_equity}"
        )


def _check_proposal_quality(
    trade: ProposedTrade, ctx: LimitContext, settings: RiskSettings, symbol: str, px: Decimal
) -> None:
    """Reject an entry whose confidence, price or average dollar volume is out of bounds."""
    if not 0 <= trade.confidence <= 1:
        raise LimitRejection("invalid_number", f"{symbol}: confidence {trade.confidence!r} is not within 0..1")
    if trade.confidence < settings.min_confidence:
        raise LimitRejection(
            "min_confidence", f"{symbol}: confidence {trade.confidence:.2f} is below {settings.min_confidence:.2f}"
        )
    if px < settings.min_price:
        raise LimitRejection(
            "min_price", f"{symbol}: {price_text(px)} is below the {price_text(settings.min_price)} minimum"
        )
    adv = ctx.avg_dollar_volume.get(symbol)
    if adv is None or not adv.is_finite() or adv < settings.min_avg_dollar_volume:
        raise LimitRejection(
            "min_avg_dollar_volume",
            f"{symbol}: average dollar volume {'unknown' if adv is None else usd(adv)} "
            f"(minimum {usd(settings.min_avg_dollar_volume)})",
        )


def _check_account_limits(ctx: LimitContext, settings: RiskSettings) -> None:
    """Reject an entry after the daily loss limit, past the per-cycle order limit, or under PDT restriction."""
    change = (ctx.equity - ctx.day_start_equity) / ctx.day_start_equity
    if change <= -to_decimal(settings.max_daily_loss_pct):
        raise LimitRejection(
            "max_daily_loss",
            f"equity {usd(ctx.equity)} is {pct_text(change)} since the day started at {usd(ctx.day_start_equity)}; "
            f"no new entries after a {pct_text(settings.max_daily_loss_pct)} daily loss",
        )
    if ctx.orders_this_cycle >= settings.max_new_orders_per_cycle:
        raise LimitRejection(
            "max_new_orders_per_cycle",
            f"{ctx.orders_this_cycle} new orders already this cycle (max {settings.max_new_orders_per_cycle})",
        )
    if pdt_restricted(ctx.equity, ctx.day_trades_used, settings):
        raise LimitRejection(
            "pdt",
            f"{ctx.day_trades_used} day trades used in 5 business days with equity {usd(ctx.equity)} below "
            f"{usd(settings.pdt_equity_threshold)}: a new position could not be closed today",
        )


def _exposures(ctx: LimitContext, symbol: str) -> tuple[Decimal, Decimal]:
    """(value of the position held in `symbol`, gross value of all positions)."""
    held, gross = Decimal(0), Decimal(0)
    for sym, pos in ctx.positions.items():
        px = ctx.prices.get(sym)
        if px is None or not _valid_price(px) or not pos.qty.is_finite():
            raise LimitRejection("invalid_context", f"no usable price for held {sym}; cannot measure exposure")
        gross += abs(pos.qty * px)
        if sym == symbol:
            held = abs(pos.qty * px)
    return held, gross
