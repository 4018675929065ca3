"""The chat's six tools (`ChatTools`, the `ToolBox` the agent and the router call): SQL over the documented views,
event search, portfolio, performance, control actions and pattern analysis.

Each tool is a thin layer over a use case the API uses too. Arguments are checked against the JSON schema the
model is shown; a bad call, a refusal or a failure answers `ok=False` with a plain reason, never an exception.
The control tool only proposes: the action runs when the user confirms it (`ControlActions.confirm`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from application.chat.control_actions import DESCRIPTIONS, ControlActions, pending_json
from application.chat.event_index import citations
from application.chat.patterns import KINDS, analyse_patterns
from application.chat.tool_args import ArgumentError, check_arguments
from application.currency import CurrencyDisplay
from application.performance_report import WINDOWS, PerformanceReport, performance_report
from application.queries import Portfolio, ReadModels
from domain.chat import UNPARSED_ARGUMENTS, ControlAction, EventHit, ToolCall, ToolResult, ToolSpec
from domain.currency import DisplayCurrency, money_text
from domain.errors import ActionConfirmationError, QuorumError
from domain.models.trading import Order, OrderType, Side
from domain.ports.chat import SqlReader

log = structlog.get_logger(__name__)
MAX_DAYS = 3650
EXCERPT_CHARS = 300
SEARCH_DEPTH = 8
"""A search reads this many times `search_k` events, so that after dropping repeats (the same decision written
every session: "HOLD — position still trending") `search_k` different ones are left."""
Handler = Callable[[dict[str, Any], str, datetime], Awaitable[ToolResult]]


class EventSearcher(Protocol):
    """What the event-search tool needs (`application.chat.event_index.EventSearch`)."""

    async def search(self, query: str, *, as_of: datetime, k: int = 8, symbol: str | None = None,
                     since: datetime | None = None) -> list[EventHit]:
        """The `k` events nearest to `query`, closest first, none after `as_of` nor before `since`."""
        ...


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _pct(value: float | str | None, *, signed: bool = True) -> str:
    if value is None or isinstance(value, str):
        return "n/a"
    value = 0.0 if abs(value) < 5e-5 else value
    return f"{value:+.2%}" if signed else f"{value:.2%}"


def _num(value: float | str | None) -> str:
    return "n/a" if value is None else (value if isinstance(value, str) else f"{value:.2f}")


class ChatTools:
    """Implements `application.chat.contracts.ToolBox`.

    Args:
        read_models: the API's read models (portfolio, cycles; its uow_factory, scope, calendar and market serve
            the performance and pattern tools).
        sql: the guarded read-only SQL executor.
        events: the event search.
        controls: proposes control actions (confirmed later by the UI through the same object).
        search_k: how many events a search returns at most.
        currency: the currency shown beside USD in the portfolio and performance answers (None: USD only).
    """

    def __init__(self, read_models: ReadModels, sql: SqlReader, events: EventSearcher, controls: ControlActions, *,
                 search_k: int = 8, currency: CurrencyDisplay | None = None) -> None:
        self.read_models, self.sql, self.events, self.controls, self.search_k = (
            read_models, sql, events, controls, search_k)
        self.currency = currency or CurrencyDisplay()
        self._handlers: dict[str, Handler] = {
            "query_sql": self._query_sql, "search_events": self._search_events, "portfolio": self._portfolio,
            "performance": self._performance, "control": self._control, "patterns": self._patterns}

    def specs(self) -> list[ToolSpec]:
        """The six tools, as a model sees them (the SQL tool lists the views and their documentation)."""
        views = "\n".join(f"- {name}: {doc}" for name, doc in sorted(self.sql.views().items()))
        return [
            ToolSpec("query_sql", "Run ONE read-only PostgreSQL SELECT over these views only (no other tables, no "
                     "schema prefix, common functions only; LIMIT is clamped). Returns a table and the SQL that "
                     f"ran. Use it for counts, lists and sums the other tools do not give.\nViews:\n{views}",
                     _schema({"sql": {"type": "string", "minLength": 1, "maxLength": 5000,
                                      "description": "one SELECT statement"}}, ["sql"])),
            ToolSpec("search_events", "Search the event log by meaning (decisions and their reasoning, validator "
                     "warnings, orders, fills, stops, breaker, pauses, errors). Use it for 'why did you ...?' "
                     "questions; cite the events it returns (time and cycle id).",
                     _schema({"query": {"type": "string", "minLength": 1, "maxLength": 500,
                                        "description": "what to look for, in words"},
                              "symbol": {"type": "string", "minLength": 1, "maxLength": 10,
                                         "description": "only this ticker's events, e.g. NVDA"},
                              "days": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS,
                                       "description": "only the last N days"}}, ["query"])),
            ToolSpec("portfolio", "The account now, live from the broker: cash, equity, buying power, exposure, "
                     "every position (quantity, entry, value, unrealised P&L, stop and who keeps it) and the open "
                     "orders (protective stop legs included).", _schema({}, [])),
            ToolSpec("performance", "Performance over a window: time-weighted return (deposits and withdrawals "
                     "are not return), profit, Sharpe, Sortino, max drawdown, win rate of closed trades, alpha and "
                     "beta against SPY. Windows count trading sessions: today (1), week (5), month (21), all.",
                     _schema({"window": {"type": "string", "enum": list(WINDOWS)}}, ["window"])),
            ToolSpec("control", "Propose an action on the trading system: pause or resume trading, run a trading "
                     "cycle now, run the evals, or flatten (cancel every order, sell every position, pause). "
                     "Nothing happens until the user confirms in the UI; say what will happen and ask them to "
                     "confirm.",
                     _schema({"action": {"type": "string", "enum": [a.value for a in ControlAction]},
                              "reason": {"type": "string", "maxLength": 500,
                                         "description": "why, in the user's words"}}, ["action"])),
            ToolSpec("patterns", "Patterns in the closed trades: which validator concerns preceded losses, win rate "
                     "by signal confidence, holding period against outcome, stop exits against other exits. Says "
                     "so when there are too few trades to conclude anything.",
                     _schema({"kind": {"type": "string", "enum": list(KINDS)}}, ["kind"])),
        ]

    async def run(self, call: ToolCall, *, who: str, as_of: datetime) -> ToolResult:
        """Run one tool call for `who` at `as_of`; a refused or failed call answers `ok=False`, it never raises."""
        handler = self._handlers.get(call.name)
        if handler is None:
            return ToolResult(str(call.name)[:40], {}, False,
                              f"unknown tool {str(call.name)[:40]!r}; the tools are {', '.join(self._handlers)}")
        if isinstance(call.arguments, dict) and set(call.arguments) == {UNPARSED_ARGUMENTS}:
            return ToolResult(call.name, {}, False, f"bad arguments for {call.name}: not a JSON object: "
                              f"{str(call.arguments[UNPARSED_ARGUMENTS])[:200]!r}")
        schema = next(s.parameters for s in self.specs() if s.name == call.name)
        try:
            args = check_arguments(call.arguments, schema)
        except ArgumentError as exc:
            return ToolResult(call.name, {}, False, f"bad arguments for {call.name}: {exc}")
        try:
            return await handler(args, who, as_of)
        except (QuorumError, ValueError) as exc:
            return ToolResult(call.name, args, False, f"{call.name} failed: {exc}")
        except Exception as exc:  # a tool answers, it never takes the chat down
            log.exception("chat_tool_failed", tool=call.name)
            return ToolResult(call.name, args, False, f"{call.name} failed ({type(exc).__name__}); see the logs")

    async def _query_sql(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        res = await self.sql.run(args["sql"])
        cut = " (cut to the cap)" if res.truncated else ""
        return ToolResult("query_sql", args, True, f"{len(res.rows)} row(s){cut}.\nSQL: {res.sql}",
                          {"sql": res.sql, "truncated": res.truncated, "row_count": len(res.rows)},
                          columns=res.columns, rows=res.rows)

    async def _search_events(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        days = args.get("days")
        since = None if days is None else as_of - timedelta(days=days)
        found = await self.events.search(args["query"], as_of=as_of, k=self.search_k * SEARCH_DEPTH,
                                         symbol=args.get("symbol"), since=since)
        hits = distinct_hits(found)[: self.search_k]
        rows = tuple((h.document.at.isoformat(), h.document.type, h.document.symbol, h.document.cycle_id,
                      h.document.event_id, h.document.text[:EXCERPT_CHARS]) for h in hits)
        if not hits:
            text = "no event found" + (f" in the last {days} days" if days else "")
        else:
            text = f"{len(hits)} event(s), closest first:\n" + "\n".join(_hit_line(h) for h in hits)
        return ToolResult("search_events", args, True, text, {"hits": len(hits)},
                          columns=("at", "type", "symbol", "cycle_id", "event_id", "text"), rows=rows,
                          citations=citations(hits))

    async def _portfolio(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        pf = await self.read_models.portfolio(as_of)
        orders = await self.read_models.broker.open_orders()
        return portfolio_result(pf, orders, await self.currency.at(as_of))

    async def _performance(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        rm = self.read_models
        report = await performance_report(rm.uow_factory, rm.scope, rm.calendar, window=args["window"], as_of=as_of,
                                          market=rm.market)
        return performance_result(report, args, await self.currency.at(as_of))

    async def _control(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        action = ControlAction(args["action"])
        try:
            pending = self.controls.propose(action, by=who, reason=args.get("reason", ""), as_of=as_of)
        except ActionConfirmationError as exc:
            return ToolResult("control", args, False, str(exc))
        text = (f"Waiting for {who}'s confirmation to {DESCRIPTIONS[action]}. Nothing happens until it is confirmed "
                f"(the request expires at {pending.expires_at:%H:%M:%S} UTC).")
        return ToolResult("control", args, True, text, {"pending": pending_json(pending)})

    async def _patterns(self, args: dict[str, Any], who: str, as_of: datetime) -> ToolResult:
        report = await analyse_patterns(self.read_models.uow_factory, self.read_models.scope, kind=args["kind"],
                                        as_of=as_of)
        rows = tuple((s.kind, g.label, g.trades, g.wins, g.win_rate, g.avg_return, str(g.pnl), g.enough)
                     for s in report.sections for g in s.groups)
        return ToolResult("patterns", args, True, report.text, report.to_json(),
                          columns=("section", "group", "trades", "wins", "win_rate", "avg_return", "pnl", "enough"),
                          rows=rows)


def distinct_hits(hits: list[EventHit]) -> list[EventHit]:
    """`hits` in order without repeats: a hit whose type, symbol and text an earlier (closer) hit had is dropped."""
    seen: set[tuple[str, str | None, str]] = set()
    out = []
    for h in hits:
        key = (h.document.type, h.document.symbol, h.document.text)
        if key not in seen:
            seen.add(key)
            out.append(h)
    return out


def _hit_line(h: EventHit) -> str:
    d = h.document
    return (f"- {d.at.astimezone(UTC):%Y-%m-%d %H:%M} UTC {d.type}{' ' + d.symbol if d.symbol else ''} (cycle "
            f"{d.cycle_id or 'none'}, event {d.event_id}): {' '.join(d.text.split())[:160]}")


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _order_json(o: Order) -> dict[str, Any]:
    r = o.request
    return {"symbol": o.symbol, "side": r.side.value, "qty": str(r.qty), "type": r.type.value,
            "stop_price": _dec(r.stop_price), "limit_price": _dec(r.limit_price), "status": o.status.value,
            "time_in_force": r.time_in_force.value, "protective_leg": o.is_leg,
            "submitted_at": o.submitted_at.isoformat()}


def _usd(amount: Decimal, display: DisplayCurrency, text: str | None = None) -> str:
    """"$650.00", and beside it "(£512.35)" when a second currency is shown."""
    first = text if text is not None else f"${amount}"
    converted = display.amount(amount)
    return first if converted is None or display.rate is None else (
        f"{first} ({money_text(converted, display.rate.quote)})")


def _currency_note(display: DisplayCurrency) -> str:
    return f"\n{display.note()}." if display.note() else ""


def portfolio_result(pf: Portfolio, orders: list[Order], display: DisplayCurrency | None = None) -> ToolResult:
    """The portfolio tool's answer: a line of totals, the positions as a table, the open orders in `data`. A
    position's stop is the one Quorum keeps, else the broker's open stop order for the symbol. With a `display`
    currency, the totals also show in it (the account trades in USD)."""
    display = display or DisplayCurrency()
    a = pf.account
    broker_stops = {o.symbol: o.request.stop_price for o in orders
                    if o.request.type is OrderType.STOP and o.request.side is Side.SELL and o.request.stop_price}
    positions = [{"symbol": v.position.symbol, "qty": str(v.position.qty),
                  "avg_entry_price": str(v.position.avg_entry_price), "last_price": _dec(v.last_price),
                  "market_value": _dec(v.market_value), "unrealized_pl": _dec(v.unrealized_pl),
                  "stop_price": _dec(v.position.stop_price or broker_stops.get(v.position.symbol)),
                  "stop_kept_by": v.stop_kept_by.value if v.stop_kept_by is not None
                  else ("broker" if v.position.symbol in broker_stops else None),
                  "take_profit_price": _dec(v.take_profit_price)} for v in pf.positions]
    exposure = float(pf.gross_exposure / a.equity) if a.equity > 0 else None
    held = ", ".join(f"{p['symbol']} {p['qty']} @ {p['avg_entry_price']} (stop {p['stop_price'] or 'none'})"
                     for p in positions) or "no positions"
    text = (f"Equity {_usd(a.equity, display)}, cash {_usd(a.cash, display)}, buying power "
            f"{_usd(a.buying_power, display)}, gross exposure {_usd(pf.gross_exposure, display)}"
            + ("" if exposure is None else f" ({exposure:.0%} of equity)")
            + f" ({'paper' if pf.paper else 'LIVE'} account).\nPositions: {held}.\nOpen orders: {len(orders)}"
            + (f" ({sum(o.is_leg for o in orders)} protective legs)." if orders else ".") + _currency_note(display))
    data = {"as_of": pf.as_of.isoformat(), "paper": pf.paper, "cash": str(a.cash), "equity": str(a.equity),
            "buying_power": str(a.buying_power), "gross_exposure": str(pf.gross_exposure), "exposure": exposure,
            "positions": positions, "open_orders": [_order_json(o) for o in orders]}
    if display.currency != "USD":
        data["display_currency"] = display.to_json(equity=a.equity, cash=a.cash, buying_power=a.buying_power,
                                                   gross_exposure=pf.gross_exposure)
    columns = ("symbol", "qty", "avg_entry_price", "last_price", "market_value", "unrealized_pl", "stop_price",
               "stop_kept_by", "take_profit_price")
    return ToolResult("portfolio", {}, True, text, data, columns=columns,
                      rows=tuple(tuple(p[c] for c in columns) for p in positions))


def performance_result(report: PerformanceReport, args: dict[str, Any],
                       display: DisplayCurrency | None = None) -> ToolResult:
    """The performance tool's answer: one sentence of the main figures, every figure in `data` and as a table;
    money also in the `display` currency when one is shown."""
    display = display or DisplayCurrency()
    p = report.performance.to_dict()
    if report.valuations < 2:
        text = f"{report.window}: not enough valuations yet to measure a return ({report.valuations})."
    else:
        trades = (f"win rate {_pct(p['win_rate'], signed=False)} of {p['trades']} closed trades" if p["trades"]
                  else "no closed trades")
        alpha = (f"alpha against {report.benchmark} {_pct(p['alpha'])} a year (beta {_num(p['beta'])})"
                 if report.benchmark else "no alpha against SPY yet (it needs 3 valuations and a SPY close on each)")
        profit, deposits = Decimal(p["profit"]), Decimal(p["net_deposits"])
        text = (f"{report.window} ({p['start']} to {p['end']}): return {_pct(p['total_return'])}, profit "
                f"{_usd(profit, display, f'${profit:,.2f}')} (net deposits "
                f"{_usd(deposits, display, f'${deposits:,.2f}')} are not counted as "
                f"return), Sharpe {_num(p['sharpe'])}, max drawdown {_pct(p['max_drawdown'], signed=False)}, "
                f"{trades}, {alpha}." + _currency_note(display))
    data = {"window": report.window, "as_of": report.as_of.isoformat(), "start_equity": _dec(report.start_equity),
            "end_equity": _dec(report.end_equity), "valuations": report.valuations, "benchmark": report.benchmark,
            **p}
    if display.currency != "USD":
        data["display_currency"] = display.to_json(profit=Decimal(p["profit"]), end_equity=report.end_equity,
                                                   net_deposits=Decimal(p["net_deposits"]))
    return ToolResult("performance", args, True, text, data, columns=("metric", "value"),
                      rows=tuple((k, v) for k, v in data.items()))
