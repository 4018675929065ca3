"""Picker performance: hit rate against the equal-weighted universe and average returns, per picker and horizon,
on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.inmemory.uow import InMemoryDatabase, InMemoryUnitOfWork
from adapters.reports.shapes import picker_performance_json
from application.discovery.performance import horizon_performance, load_performance, picker_performance
from domain.ports.discovery import ForwardReturn, Suggestion

T0 = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)


def s(picker: str, symbol: str, fwd: dict[int, float], uni: dict[int, float]) -> Suggestion:
    return Suggestion("r1", "live", picker, symbol, 0.8, 1, T0, forward_returns=fwd, universe_returns=uni)


def test_hit_rate_counts_suggestions_that_beat_the_universe() -> None:
    rows = [s("metric", "A", {1: 0.02}, {1: 0.01}),   # excess +0.01: hit
            s("metric", "B", {1: -0.01}, {1: 0.00}),  # excess -0.01
            s("metric", "C", {1: 0.03}, {1: 0.05}),   # excess -0.02: positive return, still a miss
            s("metric", "D", {1: 0.04}, {}),          # universe unknown: not counted
            s("metric", "E", {}, {})]                 # not yet known
    p = horizon_performance(rows, 1)
    assert p.n == 3
    assert p.hit_rate == pytest.approx(1 / 3)
    assert p.avg_return == pytest.approx(0.04 / 3)
    assert p.avg_universe_return == pytest.approx(0.02)
    assert p.avg_excess == pytest.approx(-0.02 / 3)


def test_a_tie_with_the_universe_is_not_a_hit() -> None:
    assert horizon_performance([s("llm", "A", {5: 0.01}, {5: 0.01})], 5).hit_rate == 0.0


def test_nothing_known_gives_no_numbers() -> None:
    p = horizon_performance([s("fuzzy", "A", {}, {})], 20)
    assert (p.n, p.hit_rate, p.avg_return, p.avg_excess) == (0, None, None, None)


def test_per_picker_and_horizon_with_the_ensemble_last() -> None:
    rows = [s("ensemble", "A", {1: 0.05, 5: 0.10}, {1: 0.01, 5: 0.12}), s("fuzzy", "A", {1: 0.05}, {1: 0.01}),
            s("metric", "B", {1: -0.02}, {1: 0.01})]
    perf = picker_performance(rows)
    assert list(perf) == ["metric", "fuzzy", "ensemble"]
    assert perf["ensemble"][1].hit_rate == 1.0 and perf["ensemble"][5].hit_rate == 0.0
    assert perf["ensemble"][5].avg_excess == pytest.approx(-0.02)
    assert perf["metric"][1].hit_rate == 0.0
    as_json = picker_performance_json(perf)
    assert as_json["ensemble"]["5d"] == {"n": 1, "hit_rate": 0.0, "avg_return": 0.10, "avg_universe_return": 0.12,
                                         "avg_excess": pytest.approx(-0.02)}
    assert as_json["fuzzy"]["20d"]["n"] == 0


async def test_load_performance_reads_stored_forward_returns() -> None:
    db = InMemoryDatabase(HashingEmbedder())
    async with InMemoryUnitOfWork(db) as uow:
        stored = await uow.suggestions.add([s("ensemble", "A", {}, {}), s("ensemble", "B", {}, {})])
        await uow.suggestions.set_forward_returns([ForwardReturn(stored[0].id or 0, 1, 0.03, 0.01),
                                                   ForwardReturn(stored[1].id or 0, 1, -0.01, 0.01)])
        perf = await load_performance(uow, "live")
        assert await load_performance(uow, "live", until=T0) == {}
    assert perf["ensemble"][1].n == 2 and perf["ensemble"][1].hit_rate == 0.5
    assert perf["ensemble"][1].avg_return == pytest.approx(0.01)
