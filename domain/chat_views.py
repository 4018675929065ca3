"""The read-only views the chat's SQL executor may query, with their documentation, and the caps of its answers.

Migration 0008 creates these views in schema ``chat`` with the same documentation as comments (a test checks the
catalogue against the database); the chat model reads `chat_view_docs()` to write its SQL. Both SQL readers (the
PostgreSQL one and the in-memory fake) cut their answers with `SqlLimits` and `json_cell`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

CHAT_SCHEMA = "chat"
CELL_CUT_MARK = "…"


@dataclass(frozen=True, slots=True)
class ViewColumn:
    """A column of a chat view: its name, its PostgreSQL type (without modifiers) and what it means."""

    name: str
    type: str
    doc: str


@dataclass(frozen=True, slots=True)
class ChatView:
    """A documented read-only view of the chat."""

    name: str
    doc: str
    columns: tuple[ViewColumn, ...]

    def documentation(self) -> str:
        """What the model reads: the view's meaning, then one line per column."""
        return "\n".join([self.doc, "Columns:", *(f"- {c.name} ({c.type}): {c.doc}" for c in self.columns)])


def _c(name: str, type_: str, doc: str) -> ViewColumn:
    return ViewColumn(name, type_, doc)


_TS, _NUM, _TXT, _F8 = "timestamp with time zone", "numeric", "text", "double precision"
_SCOPE = _c("scope", _TXT, "account scope: 'live' for the running account, 'backtest:<id>' for a backtest")

CHAT_VIEWS: tuple[ChatView, ...] = (
    ChatView("trades", "Closed trades: one row per real (not shadow) sell fill, with the position it (partly) "
             "closed. Win rate, P&L and holding periods come from here.", (
        _c("id", "bigint", "id of the exit fill"), _SCOPE,
        _c("symbol", _TXT, "ticker"),
        _c("opened_at", _TS, "first fill of the position"),
        _c("closed_at", _TS, "time of the exit fill"),
        _c("qty", _NUM, "shares sold"),
        _c("entry_price", _NUM, "average price of the position's buys"),
        _c("exit_price", _NUM, "price of the exit fill"),
        _c("fee", _NUM, "fee of the exit fill (USD)"),
        _c("pnl", _NUM, "(exit_price - entry_price) * qty - fee, in USD"),
        _c("return_pct", _F8, "exit_price / entry_price - 1 (0.05 = +5 %)"),
        _c("holding_days", _F8, "days from opened_at to closed_at"),
        _c("closes_position", "boolean", "true when the position was flat after this fill"),
        _c("exit_reason", _TXT, "why the exit was sent (e.g. stop, signal)"),
        _c("cycle_id", _TXT, "the cycle that booked the fill"),
    )),
    ChatView("fills", "Every execution, real and shadow (shadow fills are simulated while the circuit breaker is "
             "tripped).", (
        _c("id", "bigint", "fill id"), _SCOPE,
        _c("at", _TS, "execution time (UTC)"),
        _c("symbol", _TXT, "ticker"),
        _c("side", _TXT, "'buy' or 'sell'"),
        _c("qty", _NUM, "shares"),
        _c("price", _NUM, "execution price (USD)"),
        _c("fee", _NUM, "fee paid on top of qty * price (USD)"),
        _c("notional", _NUM, "qty * price rounded to the cent"),
        _c("shadow", "boolean", "true for a simulated fill of the shadow book"),
        _c("reason", _TXT, "why the order was sent"),
        _c("cycle_id", _TXT, "the cycle that booked the fill"),
        _c("client_order_id", _TXT, "Quorum's order id"),
    )),
    ChatView("decisions", "The decision steps of each cycle, per symbol: the signal and final verdict (type "
             "'signal'), rejections ('proposal_rejected'), the risk agent's sizing ('risk'), the validators' "
             "judgement ('validation') and hard-limit adjustments ('limit_applied').", (
        _c("id", "bigint", "event id"), _SCOPE,
        _c("at", _TS, "time of the cycle"),
        _c("type", _TXT, "signal, proposal_rejected, risk, validation or limit_applied"),
        _c("cycle_id", _TXT, "the cycle"),
        _c("symbol", _TXT, "ticker"),
        _c("message", _TXT, "one-line summary"),
        _c("action", _TXT, "the signal's proposal: BUY, SELL or HOLD"),
        _c("confidence", _F8, "the signal's confidence, 0..1"),
        _c("final", _TXT, "the verdict after validation and limits (e.g. BUY, SELL, HOLD, REJECTED)"),
        _c("reason", _TXT, "why the verdict (or the rejection)"),
        _c("reasoning", _TXT, "the agent's reasoning in words"),
        _c("position_pct", _F8, "the risk agent's target position as a share of equity"),
        _c("stop_loss_pct", _F8, "the risk agent's stop distance (0.05 = 5 % below entry)"),
        _c("rules_approved", "boolean", "whether the rule validator approved"),
        _c("rules_confidence", _F8, "confidence after the rule validator"),
        _c("rule_warnings", _TXT, "the rule validator's warnings (JSON array)"),
        _c("validator_approved", "boolean", "whether the validator agent approved"),
        _c("validator_warnings", _TXT, "the validator agent's concerns (JSON array)"),
        _c("limits_applied", _TXT, "hard limits that changed the proposal (JSON array)"),
        _c("rejected_by_limit", _TXT, "the hard limit that rejected the proposal, if any"),
        _c("stop_exit", "boolean", "true when the decision was a stop exit"),
    )),
    ChatView("events", "The event log: every step of every cycle, orders, fills, alerts, pauses, errors.", (
        _c("id", "bigint", "event id (increasing)"), _SCOPE,
        _c("at", _TS, "when it happened (UTC)"),
        _c("type", _TXT, "event type, e.g. cycle_started, signal, order_submitted, order_filled, stop_triggered, "
           "breaker_tripped, trading_paused, system_error"),
        _c("severity", _TXT, "debug, info, warning or critical"),
        _c("message", _TXT, "what happened, in words"),
        _c("cycle_id", _TXT, "the cycle, if any"),
        _c("symbol", _TXT, "the ticker, if any"),
        _c("payload", "jsonb", "details (read fields with payload ->> 'key')"),
    )),
    ChatView("positions_history", "The real position in each symbol after each real fill (oldest first per "
             "symbol).", (
        _c("fill_id", "bigint", "the fill"), _SCOPE,
        _c("symbol", _TXT, "ticker"),
        _c("at", _TS, "time of the fill"),
        _c("side", _TXT, "'buy' or 'sell'"),
        _c("qty", _NUM, "shares of the fill"),
        _c("price", _NUM, "price of the fill"),
        _c("position_qty", _NUM, "shares held after the fill (0 = flat)"),
        _c("avg_entry_price", _NUM, "average price of the position's buys so far (after a closing sell: of the "
           "position it closed)"),
        _c("opened_at", _TS, "first fill of the position"),
        _c("cycle_id", _TXT, "the cycle that booked the fill"),
    )),
    ChatView("discovery", "Discovery: the pickers' suggestions per run (kind 'suggestion', with forward returns "
             "once known) and watchlist changes (kind 'watchlist_add' or 'watchlist_remove').", (
        _c("kind", _TXT, "suggestion, watchlist_add or watchlist_remove"), _SCOPE,
        _c("at", _TS, "time of the run or of the change"),
        _c("symbol", _TXT, "ticker"),
        _c("source", _TXT, "the picker (metric, fuzzy, llm, ensemble) or who changed the watchlist (manual, "
           "discovered)"),
        _c("score", _F8, "the picker's score, 0..1"),
        _c("rank", "integer", "1 = the picker's best of the run"),
        _c("reason", _TXT, "why, in words"),
        _c("run_id", _TXT, "the discovery run"),
        _c("entry_price", _NUM, "close at the run"),
        _c("fwd_return_1d", _F8, "return over the next trading day"),
        _c("fwd_return_5d", _F8, "return over the next 5 trading days"),
        _c("fwd_return_20d", _F8, "return over the next 20 trading days"),
        _c("excess_return_5d", _F8, "fwd_return_5d minus the universe's"),
        _c("excess_return_20d", _F8, "fwd_return_20d minus the universe's"),
        _c("on_watchlist", "boolean", "whether the symbol is on the watchlist now"),
    )),
    ChatView("llm_calls", "Every LLM call of the agents: model, tokens, cost, latency, success.", (
        _c("id", "bigint", "call id"), _SCOPE,
        _c("at", _TS, "time of the call"),
        _c("agent", _TXT, "signal, risk, validator, picker, ..."),
        _c("provider", _TXT, "who served it"),
        _c("model", _TXT, "the model"),
        _c("prompt_tokens", "integer", "tokens sent"),
        _c("completion_tokens", "integer", "tokens received"),
        _c("cost_usd", _F8, "cost in USD"),
        _c("latency_ms", _F8, "latency in milliseconds"),
        _c("ok", "boolean", "false when the call failed (the agent then held)"),
        _c("cycle_id", _TXT, "the cycle, if any"),
        _c("error", _TXT, "why it failed"),
    )),
    ChatView("evals", "Stored eval runs of the agents (nightly, CI, manual, baseline) with the regression gate's "
             "verdict and each suite's score (higher is better).", (
        _c("id", _TXT, "run id"), _SCOPE,
        _c("at", _TS, "when it ran"),
        _c("kind", _TXT, "nightly, ci, manual or baseline"),
        _c("llm", _TXT, "what answered (offline, a model, or agent=model, ...)"),
        _c("git_sha", _TXT, "the code's commit"),
        _c("verdict", _TXT, "ok, noise, regression, refused or no_baseline"),
        _c("baseline_key", _TXT, "hash of prompts, models, prices and datasets the run is compared under"),
        _c("signal_score", _F8, "score of the signal suite"),
        _c("traps_score", _F8, "score of the traps suite"),
        _c("risk_score", _F8, "score of the risk suite"),
        _c("validator_score", _F8, "score of the validator suite"),
        _c("cost_usd", _F8, "what the run's LLM calls cost"),
    )),
)


def chat_view_docs() -> dict[str, str]:
    """View name -> its documentation, for the model and for `SqlReader.views()`."""
    return {v.name: v.documentation() for v in CHAT_VIEWS}


@dataclass(frozen=True, slots=True)
class SqlLimits:
    """What a chat query may cost and return.

    Attributes:
        timeout_ms: the statement timeout.
        max_rows: rows returned at most (one more is read to tell that the answer was cut).
        max_cell_chars: characters per cell at most (longer cells are cut and end with "…").
        max_total_chars: characters of the whole answer at most (rows past it are dropped).
        max_columns: columns at most (a wider query is refused).
    """

    timeout_ms: int = 3000
    max_rows: int = 200
    max_cell_chars: int = 2000
    max_total_chars: int = 200_000
    max_columns: int = 64

    def __post_init__(self) -> None:
        if min(self.timeout_ms, self.max_rows, self.max_cell_chars, self.max_total_chars, self.max_columns) < 1:
            raise ValueError("every SQL limit must be positive")
        if self.max_cell_chars < 2:
            raise ValueError("max_cell_chars must leave room for the cut mark")


def json_cell(value: Any, max_chars: int) -> tuple[Any, bool]:
    """A database value as JSON-safe and at most `max_chars` long; also whether it was cut.

    Decimals become exact strings, times ISO strings, non-finite floats strings, anything else not JSON its text.
    """
    if value is None or isinstance(value, (bool, int)):
        return value, False
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (str(value), False)
    if isinstance(value, Decimal):
        text = format(value.normalize(), "f") if value.is_finite() else str(value)
    elif isinstance(value, (datetime, date, time)):
        text = value.isoformat()
    elif isinstance(value, (timedelta, UUID)):
        text = str(value)
    elif isinstance(value, (bytes, bytearray, memoryview)):
        text = "\\x" + bytes(value).hex()
    else:
        text = value if isinstance(value, str) else str(value)
    if len(text) <= max_chars:
        return text, False
    return text[: max_chars - 1] + CELL_CUT_MARK, True


def capped_rows(rows: Iterable[Sequence[Any]], limits: SqlLimits) -> tuple[tuple[tuple[Any, ...], ...], bool]:
    """Rows as JSON-safe cells, cut to `limits`; also whether anything was cut (rows, cells or size)."""
    out: list[tuple[Any, ...]] = []
    total, truncated = 0, False
    for row in rows:
        if len(out) == limits.max_rows:
            return tuple(out), True
        cells = [json_cell(v, limits.max_cell_chars) for v in row]
        size = sum(len(str(v)) for v, _ in cells)
        if total + size > limits.max_total_chars:
            return tuple(out), True
        total += size
        truncated = truncated or any(cut for _, cut in cells)
        out.append(tuple(v for v, _ in cells))
    return tuple(out), truncated
