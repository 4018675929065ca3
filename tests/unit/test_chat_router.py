"""DeterministicRouter: a table of phrasings and the tool calls they become (or do not become)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from application.chat.router import DeterministicRouter, symbols_in
from domain.chat import EventCitation, ToolResult, ToolSpec

KINDS = ("all", "validator_concerns", "confidence", "holding_period", "exit_kind")
SPECS = [ToolSpec("patterns", "patterns", {"type": "object", "properties": {"kind": {"type": "string",
                                                                                    "enum": list(KINDS)}}})]
router = DeterministicRouter(SPECS)


def routed(text: str) -> list[tuple[str, dict[str, Any]]] | None:
    plan = router.plan(text)
    return None if plan is None else [(c.name, c.arguments) for c in plan.calls]


def control(action: str, text: str) -> list[tuple[str, dict[str, Any]]]:
    return [("control", {"action": action, "reason": text})]


CASES: list[tuple[str, list[tuple[str, dict[str, Any]]] | None]] = [
    # portfolio
    ("what do we hold?", [("portfolio", {})]),
    ("Show me the portfolio", [("portfolio", {})]),
    ("how much cash do we have", [("portfolio", {})]),
    ("open orders and stops", [("portfolio", {})]),
    ("positions", [("portfolio", {})]),
    # performance, one call per window named; today and all time when none is
    ("how did we do this week?", [("performance", {"window": "week"})]),
    ("performance today", [("performance", {"window": "today"})]),
    ("what's our return this month", [("performance", {"window": "month"})]),
    ("sharpe ratio overall", [("performance", {"window": "all"})]),
    ("drawdown all-time", [("performance", {"window": "all"})]),
    ("how are we doing?", [("performance", {"window": "today"}), ("performance", {"window": "all"})]),
    ("P&L this week and all time", [("performance", {"window": "week"}), ("performance", {"window": "all"})]),
    # recent events
    ("what happened today?", [("search_events", {"query": "what happened today?", "days": 1})]),
    ("recent events", [("search_events", {"query": "recent events", "days": 7})]),
    ("latest events for TSLA", [("search_events", {"query": "latest events for TSLA", "days": 7,
                                                   "symbol": "TSLA"})]),
    ("any trades?", [("search_events", {"query": "any trades?", "days": 7})]),
    # why did you trade X
    ("Why did you buy NVDA?", [("search_events", {"query": "Why did you buy NVDA?", "symbol": "NVDA"})]),
    ("why did you sell aapl", [("search_events", {"query": "why did you sell aapl", "symbol": "AAPL"})]),
    ("WHY DID YOU BUY NVDA", [("search_events", {"query": "WHY DID YOU BUY NVDA", "symbol": "NVDA"})]),
    ("Why did I lose money?", [("search_events", {"query": "Why did I lose money?"})]),
    ("why did you buy it?", [("search_events", {"query": "why did you buy it?"})]),
    ("Why did you sell AAPL and buy $MSFT?", [
        ("search_events", {"query": "Why did you sell AAPL and buy $MSFT?", "symbol": "AAPL"}),
        ("search_events", {"query": "Why did you sell AAPL and buy $MSFT?", "symbol": "MSFT"})]),
    ("why did you pause?", [("search_events", {"query": "why did you pause?"})]),
    # patterns, the kinds named by the tool's enum
    ("which concerns preceded losses?", [("patterns", {"kind": "validator_concerns"})]),
    ("win rate by confidence", [("patterns", {"kind": "confidence"})]),
    ("how long do we hold winners?", [("patterns", {"kind": "holding_period"})]),
    ("stop exits vs trend exits", [("patterns", {"kind": "exit_kind"})]),
    ("any patterns?", [("patterns", {"kind": "all"})]),
    # control: imperative commands become proposals (which still need confirmation)
    ("pause trading", control("pause", "pause trading")),
    ("Please pause trading for today.", control("pause", "Please pause trading for today.")),
    ("Can you stop trading?", control("pause", "Can you stop trading?")),
    ("resume", control("resume", "resume")),
    ("OK, resume trading please", control("resume", "OK, resume trading please")),
    ("run a cycle", control("run_cycle", "run a cycle")),
    ("trigger the trading cycle now", control("run_cycle", "trigger the trading cycle now")),
    ("run the evals", control("run_evals", "run the evals")),
    ("flatten", control("flatten", "flatten")),
    ("sell everything", control("flatten", "sell everything")),
    ("close all positions now", control("flatten", "close all positions now")),
    ("pause trading, don't flatten", control("pause", "pause trading, don't flatten")),
    # negations, questions and single orders propose nothing
    ("don't pause", []),
    ("Do NOT pause trading!", []),
    ("I don't want you to pause", []),
    ("never flatten the portfolio", []),
    ("don't stop trading", []),
    ("can you not resume yet", []),
    ("sell AAPL", []),
    ("flatten AAPL", []),
    ("close all AAPL", []),
    ("do you run a cycle every 30 minutes?", None),
    ("should I pause trading?", None),
    # SQL
    ("SELECT symbol, count(*) FROM trades GROUP BY symbol", [
        ("query_sql", {"sql": "SELECT symbol, count(*) FROM trades GROUP BY symbol"})]),
    ("  with t as (select 1) select * from t", [("query_sql", {"sql": "with t as (select 1) select * from t"})]),
    ("select 1", [("query_sql", {"sql": "select 1"})]),
    ("with what money did we buy?", None),
    # needs a model
    ("What would Buffett think of our book?", None),
    ("Is a cup of tea OK?", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_phrasings_map_to_tool_calls(text: str, expected: list[tuple[str, dict[str, Any]]] | None) -> None:
    assert routed(text) == expected


def test_the_plan_is_deterministic_and_call_ids_take_the_prefix() -> None:
    first, second = router.plan("P&L this week and all time", call_prefix="r7_"), router.plan(
        "P&L this week and all time", call_prefix="r7_")
    assert first == second and first is not None and [c.id for c in first.calls] == ["r7_1", "r7_2"]


@pytest.mark.parametrize(("text", "symbols"), [
    ("Is I OK? A CEO said so", []),
    ("NVDA vs AMD, and the ETF SPY", ["NVDA", "AMD", "SPY"]),
    ("what about BRK.B", ["BRK.B"]),
    ("the P&L of AAPL", ["AAPL"]),
    ("why did you buy so much", []),
    ("why did you buy shares of msft", ["MSFT"]),
])
def test_symbols_are_told_from_abbreviations_and_words(text: str, symbols: list[str]) -> None:
    assert symbols_in(text) == symbols


def test_a_negation_says_nothing_was_proposed() -> None:
    plan = router.plan("please don't flatten anything")
    assert plan is not None and plan.calls == () and "proposed nothing" in plan.note


def test_without_a_kind_enum_the_router_uses_its_own_names() -> None:
    plan = DeterministicRouter().plan("win rate by confidence")
    assert plan is not None and plan.calls[0].arguments == {"kind": "confidence"}


def test_a_question_it_cannot_map_names_the_setting_and_what_it_can_answer() -> None:
    answer = router.cannot_answer()
    assert "QUORUM_CHAT__MODEL" in answer
    for example in ("what do we hold?", "this week", "why did you buy NVDA?", "pause trading", "SELECT"):
        assert example in answer
    assert router.cannot_answer(reason="The model failed.").startswith("The model failed.")


def test_compose_shows_tables_citations_refusals_and_the_confirmation() -> None:
    plan = router.plan("why did you buy NVDA?")
    assert plan is not None
    at = datetime(2024, 3, 1, 15, 30, tzinfo=UTC)
    found = ToolResult("search_events", {"query": "why", "symbol": "NVDA"}, True, "2 events", columns=("type", "text"),
                       rows=(("decision", "momentum | volume"),),
                       citations=(EventCitation(41, at, "cyc-9", "decision", "NVDA"),))
    refused = ToolResult("query_sql", {"sql": "drop table x"}, False, "refused: not a SELECT")
    text = router.compose(plan, [found, refused])
    assert "**Events about NVDA**" in text and "| decision | momentum \\| volume |" in text
    assert "- 2024-03-01 15:30 UTC, cycle cyc-9, decision, NVDA (event #41)" in text
    assert "**Query**: could not answer. refused: not a SELECT" in text
    proposal = ToolResult("control", {"action": "pause"}, True, "Waiting for ann's confirmation.")
    pause = router.plan("pause trading")
    assert pause is not None and "confirm or cancel below" in router.compose(pause, [proposal])
