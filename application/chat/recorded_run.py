"""The chat over a recorded backtest run (`quorum chat --backtest`): the same tools, read in the run's scope at the
run's end, with the portfolio read from the run's records and every control action refused.

`RecordedRunTools` wraps the tool box built on the run's scope: each call is answered as of the run's last
valuation (so "today" is its last session and no later event is found), the model is told the run and its scope
(the SQL views hold every scope), the portfolio comes from `recorded_portfolio`, and `control` answers a refusal:
a recorded run cannot be paused, resumed, traded or flattened. `RecordedRunControls` refuses confirmations too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Any

from application.chat.contracts import ToolBox
from application.chat.recorded_portfolio import RecordedRun, recorded_portfolio, recorded_portfolio_result
from application.chat.tool_args import ArgumentError, check_arguments
from domain.chat import ToolCall, ToolResult, ToolSpec
from domain.errors import ActionConfirmationError
from domain.ports.uow import UnitOfWorkFactory


def refusal(run: RecordedRun) -> str:
    """Why no control action is possible in a recorded run."""
    return (f"this chat reads the recorded {run.label}, and a recorded run cannot be paused, resumed, run or "
            "flattened: nothing was done. Open `quorum chat` without --backtest to act on the running system.")


class RecordedRunTools:
    """Implements `application.chat.contracts.ToolBox` over a recorded backtest run.

    Args:
        inner: the chat's tools built on the run's scope (`ChatTools`, without market data: the run's own market
            is not the live one).
        run: the run.
        uow_factory: reads the run's records.
    """

    def __init__(self, inner: ToolBox, run: RecordedRun, uow_factory: UnitOfWorkFactory) -> None:
        self.inner, self.recorded, self._uow_factory = inner, run, uow_factory

    def specs(self) -> list[ToolSpec]:
        """The inner tools, their descriptions telling which run is read and how."""
        run = self.recorded
        head = f"This chat reads the recorded {run.label} ({run.period}), not the live account. "
        notes = {
            "query_sql": f"{head}Every view holds all scopes: add WHERE scope = '{run.scope}' to each view you "
                         "read. ",
            "search_events": f"{head}Only this run's events are searched. ",
            "performance": f"{head}Windows end at its last session ({run.last_session}). ",
            "patterns": f"{head}Only this run's closed trades. ",
        }
        out = []
        for spec in self.inner.specs():
            if spec.name == "portfolio":
                spec = replace(spec, description=f"{head}The run's portfolio at its last valuation, from its "
                               "records: equity, cash, gross exposure, the positions held at the end (quantity, "
                               "entry, cost, stop) and the orders still open.")
            elif spec.name == "control":
                spec = replace(spec, description=f"{head}Control actions are refused here: a recorded run cannot "
                               "be paused, resumed, run or flattened. Say so if asked.")
            else:
                spec = replace(spec, description=notes.get(spec.name, head) + spec.description)
            out.append(spec)
        return out

    async def run(self, call: ToolCall, *, who: str, as_of: datetime) -> ToolResult:
        """Run one call as of the run's end (never later than `as_of`); a refused call answers `ok=False`."""
        at = min(as_of, self.recorded.as_of)
        if call.name == "control":
            arguments = call.arguments if isinstance(call.arguments, dict) else {}
            return ToolResult("control", arguments, False, refusal(self.recorded), {"run_id": self.recorded.run_id})
        if call.name == "portfolio":
            try:
                check_arguments(call.arguments, next(s.parameters for s in self.specs() if s.name == "portfolio"))
            except ArgumentError as exc:
                return ToolResult("portfolio", {}, False, f"bad arguments for portfolio: {exc}")
            return recorded_portfolio_result(await recorded_portfolio(self._uow_factory, self.recorded))
        if call.name == "search_events":
            call = self._with_run_symbol(call)
        result = await self.inner.run(call, who=who, as_of=at)
        if not result.ok:
            return result
        if result.name == "query_sql" and self.recorded.scope not in str(result.data.get("sql", "")):
            return replace(result, text=f"{result.text}\nNote: this query does not filter on scope = "
                           f"'{self.recorded.scope}': its rows may mix this run with other runs and the live account.")
        if result.name == "performance":
            return replace(result, text=f"{result.text} {_report_line(self.recorded)}".rstrip())
        return result


    def _with_run_symbol(self, call: ToolCall) -> ToolCall:
        """A search without a symbol whose query names exactly one of the run's symbols (as written; synthetic ones
        such as S0003, which the router does not take for tickers, in any case) is narrowed to that symbol."""
        args = call.arguments
        if not isinstance(args, dict) or args.get("symbol") or not isinstance(args.get("query"), str):
            return call
        symbols = [str(s) for s in self.recorded.summary.get("symbols") or () if isinstance(s, str) and s]
        named = [s for s in symbols if re.search(rf"(?<![\w.]){re.escape(s)}(?!\w)", args["query"],
                                                 re.I if any(c.isdigit() for c in s) else 0)]
        return replace(call, arguments={**args, "symbol": named[0]}) if len(named) == 1 else call


def _report_line(run: RecordedRun) -> str:
    """What the run's report says against SPY (alpha, beta, SPY buy and hold), when it says it."""
    s = run.summary
    spy: Any = (s.get("benchmarks") or {}).get("spy_buy_and_hold") or {}
    parts = []
    if isinstance(s.get("alpha"), int | float):
        parts.append(f"alpha {s['alpha']:+.2%} a year")
    if isinstance(s.get("beta"), int | float):
        parts.append(f"beta {s['beta']:.2f}")
    if isinstance(spy.get("total_return"), int | float):
        parts.append(f"SPY buy and hold {spy['total_return']:+.2%}")
    return f"The run's report, over the whole run, against SPY: {', '.join(parts)}." if parts else ""


class RecordedRunControls:
    """The chat's `Controls` over a recorded run: every confirmation is refused, nothing is ever done."""

    def __init__(self, run: RecordedRun) -> None:
        self.recorded = run

    async def confirm(self, sent_id: str, returned_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Refuse (a recorded run proposes no action to confirm).

        Raises:
            ActionConfirmationError: always.
        """
        raise ActionConfirmationError(refusal(self.recorded))

    async def cancel(self, action_id: str, *, by: str, as_of: datetime) -> ToolResult:
        """Nothing to cancel: answered `ok=False` with the reason."""
        return ToolResult("control", {"action_id": action_id}, False, refusal(self.recorded))
