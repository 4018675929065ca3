"""Memory evidence only where it informs: outcomes known at the recall, no self-matches or same-day duplicates,
the nearest k within a distance, a trade's reasoning cut to a short summary; the old behaviour on request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from application.cycle.decide import recall_trades
from application.market_conditions import MarketConditionService
from domain.agents.schemas import MarketConditions, SymbolFeatures
from domain.evidence import LEGACY, EvidencePolicy, trim_reasoning
from domain.features import setup_text
from domain.memory import MemoryKind, MemoryRecord, SimilarItem

AS_OF = datetime(2016, 3, 14, 14, 0, tzinfo=UTC)
SCOPE = "live"
REASONING = "momentum and volume agreed while the market trend was supportive " * 20


def trade(symbol: str, days_ago: float, *, outcome: str | None = "WIN", text: str = "a setup") -> MemoryRecord:
    at = AS_OF - timedelta(days=days_ago)
    known = None if outcome is None else at + timedelta(hours=6)
    return MemoryRecord(MemoryKind.TRADE, text, at, symbol=symbol, action="BUY", outcome=outcome,
                        return_pct=None if outcome is None else (0.03 if outcome == "WIN" else -0.02),
                        outcome_at=known, scope=SCOPE)


def item(record: MemoryRecord, distance: float) -> SimilarItem:
    return SimilarItem(record, distance)


def test_the_nearest_known_outcomes_within_the_distance_one_per_symbol_and_day() -> None:
    items = [item(trade("AAPL", 1, outcome=None), 0.0),       # still open: no outcome to learn from
             item(trade("MSFT", 3), 0.05),
             item(trade("MSFT", 3.1, outcome="LOSS"), 0.06),  # same symbol, same day: a duplicate
             item(trade("XOM", 5, outcome="LOSS"), 0.1),
             item(trade("GE", 8), 0.2),
             item(trade("T", 9), 0.9)]                         # too far to be "similar"
    chosen = EvidencePolicy(max_distance=0.6).select(items, k=5)
    assert [(i.record.symbol, i.distance) for i in chosen] == [("MSFT", 0.05), ("XOM", 0.1), ("GE", 0.2)]
    assert [i.record.symbol for i in EvidencePolicy().select(items, k=2)] == ["MSFT", "XOM"]
    assert LEGACY.select(items, k=3) == items[:3]  # the old behaviour: the nearest k, as recalled


def test_reasoning_is_cut_to_a_short_summary_and_the_outcome_kept() -> None:
    text = f"SELL MSFT at 52.1. Reasoning: {REASONING}. Outcome: WIN +3.00%"
    short = trim_reasoning(text, 200)
    assert short.startswith("SELL MSFT at 52.1. Reasoning: momentum and volume")
    assert short.endswith("…. Outcome: WIN +3.00%") and len(short) < 260
    assert trim_reasoning("BUY X at 1: setup. Reasoning: short", 200) == "BUY X at 1: setup. Reasoning: short"
    assert trim_reasoning("Market on 2016-03-11: VIX 16.1 (calm).", 10) == "Market on 2016-03-11: VIX 16.1 (calm)."
    assert trim_reasoning(f"BUY X at 1: setup. Reasoning: {REASONING}", 0) == "BUY X at 1: setup."


FEATURES = SymbolFeatures(symbol="AAPL", price=101.5, return_1d=0.001, return_5d=0.01, return_20d=0.05,
                          return_60d=0.1, sma_20=99.0, sma_50=95.0, volatility_20d=0.23, atr_pct=0.018,
                          avg_dollar_volume_20d=1e9, volume_ratio=1.2)


async def test_recall_skips_open_trades_even_when_they_are_the_nearest() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    same = f"BUY AAPL at 101.5: {setup_text(FEATURES)}. Reasoning: uptrend with momentum"
    async with InMemoryUnitOfWork(db) as uow:
        await uow.trade_memory.store([trade("AAPL", i / 10, outcome=None, text=same) for i in range(1, 6)])
        await uow.trade_memory.store([trade(s, 2 + i, outcome="LOSS", text=f"{same} {s}")
                                      for i, s in enumerate(("MSFT", "XOM", "GE", "T", "C", "BAC"))])
        embedder = db.trade_memory._embedder
        nearest = await recall_trades(uow, embedder, [FEATURES], scope=SCOPE, as_of=AS_OF, k=5,
                                      policy=EvidencePolicy())
        wider = await recall_trades(uow, embedder, [FEATURES], scope=SCOPE, as_of=AS_OF, k=5,
                                    policy=EvidencePolicy(fetch_factor=4))
        legacy = await recall_trades(uow, embedder, [FEATURES], scope=SCOPE, as_of=AS_OF, k=5)
    assert [e.outcome for e in legacy["AAPL"]] == [None] * 5
    assert nearest["AAPL"] == ()  # the nearest five teach nothing yet, and the decisions see what they saw
    assert len(wider["AAPL"]) == 5 and all(e.outcome == "LOSS" for e in wider["AAPL"])


MARKET = MarketConditions(vix=16.1, vix_is_proxy=False, spy_return_20d=0.01, spy_above_sma_50=True,
                          spy_trend="up", text="Market on 2016-03-11: VIX 16.1 (calm); SPY in an uptrend.")


async def test_the_current_sessions_own_market_record_is_not_recalled_as_a_similar_condition() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    yesterday = AS_OF - timedelta(hours=18)
    before = AS_OF - timedelta(days=30)
    async with InMemoryUnitOfWork(db) as uow:
        await uow.condition_memory.store([
            MemoryRecord(MemoryKind.CONDITION, MARKET.text, yesterday, scope=SCOPE),  # today's, no outcome yet
            MemoryRecord(MemoryKind.CONDITION, "Market on 2016-02-11: VIX 25.0 (elevated); SPY in a downtrend.",
                         before, outcome="RALLY", return_pct=0.02, outcome_at=before + timedelta(days=7),
                         scope=SCOPE)])
        service = MarketConditionService(market=None, scope=SCOPE)  # type: ignore[arg-type]
        compact = await service.recall(uow, MARKET, as_of=AS_OF, k=3, policy=EvidencePolicy())
        legacy = await service.recall(uow, MARKET, as_of=AS_OF, k=3)
    assert [e.outcome for e in compact] == ["RALLY"]
    assert legacy[0].distance == 0.0 and legacy[0].outcome is None
