"""Under CI=true a missing prerequisite fails the test instead of skipping it."""

from __future__ import annotations

import pytest

from tests.ci_strict import failure_for_skip, in_ci, require_or_skip, strict_reason

CI = {"CI": "true"}
LOCAL: dict[str, str] = {}


def test_a_missing_prerequisite_skips_locally_and_fails_in_ci() -> None:
    reason = "Redis is not reachable at redis://127.0.0.1:6379/5 (ConnectionError)"

    with pytest.raises(pytest.skip.Exception, match="Redis is not reachable"):
        require_or_skip(False, reason, environ=LOCAL)
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and a prerequisite is missing: Redis is not reachable"):
        require_or_skip(False, reason, environ=CI)


def test_a_present_prerequisite_neither_skips_nor_fails() -> None:
    require_or_skip(True, "real market data not found", environ=CI)


@pytest.mark.parametrize(("value", "expected"),
                         [("true", True), ("TRUE", True), ("1", True), ("", False), ("no", False)])
def test_ci_is_read_from_the_ci_variable(value: str, expected: bool) -> None:
    assert in_ci({"CI": value}) is expected


@pytest.mark.parametrize("reason", [
    "Redis is not reachable at redis://127.0.0.1:6379/5 (ConnectionRefusedError); `make redis` starts it",
    "real market data not found at /x/shared/data (clone with ../shared beside the project)",
    "/work/shared/data/derived/intraday_days_with_5pct_moves.csv not found",
    "real bars missing: AAPL, MSFT",
    "the 'ml' extra is not installed",
    "fixture missing: tests/fixtures/alpaca/order_bracket.json",
])
def test_skips_for_missing_prerequisites_become_failures_in_ci(reason: str) -> None:
    skip = pytest.skip.Exception(reason)

    assert strict_reason(reason)
    assert failure_for_skip(skip, CI) == f"CI=true and a prerequisite is missing: {reason}"
    assert failure_for_skip(skip, LOCAL) is None


def test_other_skips_stand_in_ci() -> None:
    reason = "no Compose binary installed (docker compose / docker-compose): the JSON schema test covers it"

    assert not strict_reason(reason)
    assert failure_for_skip(pytest.skip.Exception(reason), CI) is None
    assert failure_for_skip(ValueError("Redis is not reachable"), CI) is None
