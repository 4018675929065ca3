"""Preflight: checks run in order, one at a time, each isolated; the report's shape; the checks that need no network."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest

from adapters.inmemory.clock import SimClock
from application.preflight import Check, CheckResult, failed, passed, run_checks, skipped
from entrypoints.commands.preflight import render_json, render_table, report_json
from entrypoints.container import build_container
from entrypoints.logging_setup import register_secret
from entrypoints.preflight_checks import ALPACA_KEYS, LIVE_ACK, PreflightChecks
from entrypoints.settings import LIVE_TRADING_ACK, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No QUORUM_* variable and no .env file of the developer's machine leaks into these tests."""
    for key in list(os.environ):
        if key.startswith("QUORUM_") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _check(result: CheckResult, log: list[str] | None = None, name: str = "") -> Check:
    async def check() -> CheckResult:
        if log is not None:
            log.append(f"start {name}")
            await asyncio.sleep(0)  # yield: a concurrent runner would interleave here
            log.append(f"end {name}")
        return result

    return check


async def test_checks_run_one_at_a_time_in_the_given_order() -> None:
    log: list[str] = []
    names = ["c", "a", "b"]
    results = await run_checks([(n, _check(passed(f"found {n}"), log, n)) for n in names], timeout_s=5)
    assert [r.name for r in results] == names
    assert [r.detail for r in results] == ["found c", "found a", "found b"]
    assert log == ["start c", "end c", "start a", "end a", "start b", "end b"]


async def test_a_check_that_raises_becomes_a_failure_and_the_next_checks_still_run() -> None:
    async def broken() -> CheckResult:
        raise RuntimeError("connection pool exploded")

    results = await run_checks(
        [("first", _check(passed("fine"))), ("broken", broken), ("last", _check(passed("also fine")))],
        timeout_s=5, error_hint="rerun with QUORUM_LOG_LEVEL=DEBUG")
    first, bad, last = results
    assert first.ok and last.ok and last.detail == "also fine"
    assert not bad.ok and bad.name == "broken"
    assert "RuntimeError" in bad.detail and "connection pool exploded" in bad.detail
    assert bad.hint == "rerun with QUORUM_LOG_LEVEL=DEBUG"


async def test_a_check_that_hangs_is_cut_off_at_the_timeout_and_cancelled() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> CheckResult:
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return passed("unreachable")

    results = await run_checks([("hangs", hangs), ("after", _check(passed("ran")))], timeout_s=0.05,
                               timeout_hint="rerun with `quorum preflight --timeout 120`")
    hung, after = results
    assert not hung.ok and "did not finish within 0.05s" in hung.detail
    assert hung.hint == "rerun with `quorum preflight --timeout 120`"
    assert cancelled.is_set()
    assert after.ok and after.detail == "ran"


async def test_a_timeout_raised_by_the_check_itself_is_an_error_not_the_deadline() -> None:
    async def times_out() -> CheckResult:
        raise TimeoutError("Alpaca did not answer")

    (result,) = await run_checks([("broker", times_out)], timeout_s=60)
    assert not result.ok and "TimeoutError: Alpaca did not answer" in result.detail
    assert "did not finish" not in result.detail


async def test_durations_come_from_the_timer_and_names_from_the_list() -> None:
    ticks = iter([10.0, 10.25, 20.0, 20.5])
    results = await run_checks([("one", _check(CheckResult("ignored", True, "x"))), ("two", _check(passed("y")))],
                               timeout_s=5, timer=lambda: next(ticks))
    assert [(r.name, r.duration_ms) for r in results] == [("one", 250.0), ("two", 500.0)]


async def test_a_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        await run_checks([], timeout_s=0)


def test_report_shape_skipped_counts_as_passed_and_one_failure_fails_all() -> None:
    ok = [CheckResult("a", True, "fine", duration_ms=1.234), CheckResult("b", True, "n/a", skipped=True)]
    doc = report_json(ok)
    assert doc == json.loads(json.dumps(doc))
    assert doc["ok"] is True
    assert doc["checks"][0] == {"name": "a", "ok": True, "skipped": False, "detail": "fine", "hint": None,
                                "duration_ms": 1.2}
    assert doc["checks"][1]["skipped"] is True
    bad = report_json([*ok, CheckResult("c", False, "down", "run `quorum db upgrade`")])
    assert bad["ok"] is False and bad["checks"][2]["hint"] == "run `quorum db upgrade`"


def test_rendered_output_masks_registered_secrets_in_json_and_table() -> None:
    secret = "sk-test-UNIT-preflight-4242"
    register_secret(secret)
    results = [CheckResult("llm:signal", False, f"Incorrect API key provided: {secret}", f"not {secret}"),
               CheckResult("redis", True, "not set", skipped=True), CheckResult("calendar", True, "open")]
    as_json, table = render_json(results), render_table(results)
    assert secret not in as_json and secret not in table
    doc = json.loads(as_json)
    assert doc["ok"] is False and doc["checks"][0]["detail"] == "Incorrect API key provided: ***"
    lines = click.unstyle(table).splitlines()
    assert lines[0].startswith("✗ llm:signal") and "fix: not ***" in lines[1]
    assert lines[2].startswith("- redis") and lines[3].startswith("✓ calendar")
    assert "1 passed, 1 failed, 1 skipped" in table


def _checks(clock_at: datetime | None = None, **settings: object) -> PreflightChecks:
    s = Settings(_env_file=None, **settings)  # type: ignore[call-arg]
    clock = SimClock(clock_at or datetime(2024, 7, 3, 15, 0, tzinfo=UTC))
    return PreflightChecks(s, build_container(s, "test"), clock=clock)


async def test_offline_sim_configuration_needs_no_key_and_skips_redis() -> None:
    checks = _checks()
    assert (await checks.broker()).ok and "simulated paper broker" in (await checks.broker()).detail
    for agent in ("signal", "risk", "validator", "picker"):
        result = await checks.llm(agent)
        assert result.ok and result.detail == "offline policy (no key needed)"
    redis = await checks.redis()
    assert redis.ok and redis.skipped and "QUORUM_REDIS_URL" in redis.detail


async def test_alpaca_without_keys_fails_with_the_settings_to_set() -> None:
    result = await _checks(broker={"provider": "alpaca"}).broker()
    assert not result.ok and result.hint == ALPACA_KEYS


async def test_live_mode_without_the_acknowledgement_fails_before_any_call() -> None:
    result = await _checks(broker={"provider": "alpaca", "paper": False, "alpaca_api_key": "AKLIVEKEY0001",
                                   "alpaca_secret_key": "live-secret-value"}).broker()
    assert not result.ok and result.hint == LIVE_ACK
    assert f"QUORUM_LIVE_TRADING={LIVE_TRADING_ACK} only if you mean to trade real money" in LIVE_ACK


async def test_a_paper_key_in_live_mode_fails_with_the_setting_that_matches_it() -> None:
    result = await _checks(live_trading=LIVE_TRADING_ACK,
                           broker={"provider": "alpaca", "paper": False, "alpaca_api_key": "PKPAPERKEY001",
                                   "alpaca_secret_key": "paper-secret-value"}).broker()
    assert not result.ok and "looks like a paper key" in result.detail
    assert result.hint is not None and "QUORUM_BROKER__PAPER=true" in result.hint


async def test_paper_mode_pointed_at_the_live_url_fails() -> None:
    result = await _checks(broker={"provider": "alpaca", "alpaca_api_key": "PKPAPERKEY001",
                                   "alpaca_secret_key": "paper-secret-value",
                                   "trading_url": "https://api.alpaca.markets"}).broker()
    assert not result.ok and "live API" in result.detail
    assert result.hint is not None and "QUORUM_BROKER__TRADING_URL" in result.hint


async def test_agents_sharing_a_model_are_checked_once(tmp_path: Path) -> None:
    recordings = tmp_path / "cassettes"
    recordings.mkdir()
    checks = _checks(llm={"signal_model": "openai/gpt-4o-mini", "risk_model": "openai/gpt-4o-mini",
                          "replay_dir": str(recordings)})
    signal, risk = await checks.llm("signal"), await checks.llm("risk")
    assert signal.ok and "replayed from" in signal.detail
    assert risk.ok and risk.detail.startswith("same model as the signal agent")


async def test_calendar_reports_an_open_market_and_its_close() -> None:
    result = await _checks(datetime(2024, 7, 3, 15, 0, tzinfo=UTC)).calendar()  # 11:00 ET, early-close day
    assert result.ok and result.detail == "NYSE open now, closes 2024-07-03 13:00 ET"


async def test_calendar_reports_the_next_session_when_closed() -> None:
    result = await _checks(datetime(2024, 7, 4, 15, 0, tzinfo=UTC)).calendar()  # Independence Day
    assert result.ok
    assert result.detail == "NYSE closed now; next session opens 2024-07-05 09:30 ET, closes 2024-07-05 16:00 ET"
    before_open = await _checks(datetime(2024, 7, 5, 12, 0, tzinfo=UTC)).calendar()  # 08:00 ET the same day
    assert "next session opens 2024-07-05 09:30 ET" in before_open.detail


def test_result_helpers() -> None:
    assert failed("down", "run x") == CheckResult("", False, "down", "run x")
    assert skipped("n/a") == CheckResult("", True, "n/a", None, skipped=True)
