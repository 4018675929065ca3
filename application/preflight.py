"""Preflight: run a fixed list of readiness checks, each isolated, and summarise them.

A check is an async callable returning a `CheckResult`. `run_checks` runs them one
after the other in the given order; a check that raises or overruns its time budget
becomes a failed result naming the error, so one broken dependency never hides the
report on the others. This module does no I/O itself: the checks come from the
composition root.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

_MAX_ERROR_TEXT = 500


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check.

    Attributes:
        name: short identifier of the check ("database", "llm:signal", ...).
        ok: whether the check passed (a skipped check counts as passed).
        detail: what was found, in one line.
        hint: what to set or run to fix a failure (or a note on a pass); None when nothing to do.
        skipped: the check does not apply to this configuration.
        duration_ms: time the check took, set by `run_checks`.
    """

    name: str
    ok: bool
    detail: str
    hint: str | None = None
    skipped: bool = False
    duration_ms: float = 0.0


Check = Callable[[], Awaitable[CheckResult]]
Timer = Callable[[], float]


def passed(detail: str, hint: str | None = None) -> CheckResult:
    """A passing result; `run_checks` fills in the name and duration."""
    return CheckResult("", True, detail, hint)


def failed(detail: str, hint: str | None) -> CheckResult:
    """A failing result with what to do about it; `run_checks` fills in the name and duration."""
    return CheckResult("", False, detail, hint)


def skipped(detail: str) -> CheckResult:
    """A check that does not apply (it counts as passed)."""
    return CheckResult("", True, detail, None, skipped=True)


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip()
    text = text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _run_one(check: Check, timeout_s: float, timeout_hint: str | None, error_hint: str | None) -> CheckResult:
    deadline = asyncio.timeout(timeout_s)
    try:
        async with deadline:
            return await check()
    except TimeoutError as exc:
        if deadline.expired():
            return failed(f"did not finish within {timeout_s:g}s", timeout_hint)
        return failed(f"unexpected error: {_error_text(exc)}", error_hint)
    except Exception as exc:  # noqa: BLE001 - a broken check must not stop the others
        return failed(f"unexpected error: {_error_text(exc)}", error_hint)


async def run_checks(
    checks: Sequence[tuple[str, Check]],
    *,
    timeout_s: float,
    timer: Timer = time.perf_counter,
    timeout_hint: str | None = None,
    error_hint: str | None = None,
) -> list[CheckResult]:
    """Run `checks` one after the other, in order, each isolated from the others.

    Args:
        checks: (name, check) pairs; the name given here is the name of the result.
        timeout_s: time budget of one check; an overrun becomes a failed result.
        timer: monotonic seconds, for the durations (injectable for tests).
        timeout_hint: hint attached to a check that overran its budget.
        error_hint: hint attached to a check that raised instead of returning a result.

    Returns:
        One result per check, in the order of `checks`.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    results: list[CheckResult] = []
    for name, check in checks:
        started = timer()
        result = await _run_one(check, timeout_s, timeout_hint, error_hint)
        elapsed_ms = (timer() - started) * 1000.0
        results.append(dataclasses.replace(result, name=name, duration_ms=elapsed_ms))
    return results


def all_ok(results: Sequence[CheckResult]) -> bool:
    """Whether no check failed (skipped checks do not count as failures)."""
    return all(r.ok for r in results)
