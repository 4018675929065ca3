"""`quorum trading pause|resume|status` and `quorum breaker resume` refusals, on a real database."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from entrypoints.cli import app


def test_pause_and_resume_are_recorded(pg_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": pg_url}
    runner = CliRunner(env=env)
    scope = "test:trading-cli"
    out = runner.invoke(app, ["trading", "pause", "--reason", "earnings week", "--by", "ana", "--scope", scope])
    assert out.exit_code == 0 and "trading paused by ana: earnings week" in out.output
    assert runner.invoke(app, ["trading", "status", "--json", "--scope", scope]).stdout.strip() == '{"paused": true}'
    out = runner.invoke(app, ["trading", "resume", "--by", "ana", "--scope", scope])
    assert out.exit_code == 0 and "resumed" in out.output
    assert runner.invoke(app, ["trading", "status", "--scope", scope]).stdout.strip() == "trading"


def test_breaker_resume_needs_approval_and_eligibility(pg_url: str) -> None:
    runner = CliRunner(env={**os.environ, "DATABASE_URL": pg_url})
    out = runner.invoke(app, ["breaker", "resume", "--scope", "test:breaker-cli"])
    assert out.exit_code == 2 and "--approve" in out.output
    out = runner.invoke(app, ["breaker", "resume", "--approve", "--by", "ana", "--scope", "test:breaker-cli"])
    assert out.exit_code == 1 and "nothing to resume" in out.output
