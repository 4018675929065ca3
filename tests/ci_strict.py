"""Under CI, a test that would skip for a missing prerequisite fails instead.

Locally a test may skip when Redis is down, ../shared/data or a fixture file is missing, or the `ml`
extra is not installed. In CI (``CI=true``) those are broken setups, not reasons to pass quietly: the
same reason becomes a failure. `require_or_skip` is the helper for fixtures and tests;
`strict_reason` recognises the same reasons in `pytest.skip` / `pytest.importorskip` calls made by
tests that do not use the helper (tests/conftest.py turns those skips into failures).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import pytest

PREFIX = "CI=true and a prerequisite is missing: "
STRICT_REASONS = (
    re.compile(r"Redis is not reachable", re.IGNORECASE),
    re.compile(r"real market data not found", re.IGNORECASE),
    re.compile(r"real bars missing", re.IGNORECASE),
    re.compile(r"\bshared[/\\]data\b", re.IGNORECASE),
    re.compile(r"fixture (file )?(is )?(missing|not found)", re.IGNORECASE),
    re.compile(r"'ml' extra", re.IGNORECASE),
)


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the CI environment variable says this is a CI run (``true``/``1``/``yes``)."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() in ("true", "1", "yes")


def strict_reason(reason: str) -> bool:
    """Whether a skip reason names a prerequisite CI must have (Redis, shared data, fixtures, `ml`)."""
    return any(pattern.search(reason) for pattern in STRICT_REASONS)


def failure_for_skip(exc: BaseException | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The failure message a `pytest.skip` exception becomes under CI, or None when the skip may stand."""
    if not isinstance(exc, pytest.skip.Exception):
        return None
    reason = str(getattr(exc, "msg", exc))
    if in_ci(environ) and strict_reason(reason):
        return f"{PREFIX}{reason}"
    return None


def require_or_skip(ok: bool, reason: str, *, environ: Mapping[str, str] | None = None) -> None:
    """Skip the test with `reason` unless `ok`; under ``CI=true`` fail with the same reason instead."""
    if ok:
        return
    if in_ci(environ):
        pytest.fail(f"{PREFIX}{reason}", pytrace=False)
    pytest.skip(reason)
