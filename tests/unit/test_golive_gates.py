"""`quorum golive`'s gates on fakes (in-memory storage, fake channels, a fake live account), each passing and
failing with its fix; the go-live record that live trading requires; the command refusing or switching."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from typer.testing import CliRunner

import entrypoints.commands.golive as golive_command
import entrypoints.golive_checks as gc
import entrypoints.golive_selftests as gs
from adapters.inmemory.clock import SimClock
from application.chat.contracts import ChatAnswer
from application.paper.campaign import CampaignNotFoundError
from application.preflight import CheckResult, passed
from domain.chat import ToolResult
from domain.errors import ConfigurationError, DatabaseError
from domain.models.account import Account
from domain.paper import CampaignStatus, Criterion, PaperCampaign
from domain.ports.repositories import EvalRunRecord
from entrypoints.container import build_container
from entrypoints.golive_checks import GoLiveChecks
from entrypoints.golive_record import account_fingerprint, read_record
from entrypoints.settings import LIVE_TRADING_ACK, Settings, load_settings

NOW = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)
LIVE_KEY = "AKLIVEKEY0000000001"
ACCOUNT = Account(cash=Decimal("650"), equity=Decimal("650"), buying_power=Decimal("650"))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No QUORUM_* variable of the developer's machine; the data dir is the test's."""
    for key in list(os.environ):
        if (key.startswith("QUORUM_") and key != "QUORUM_NO_DOTENV") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{"env": "test", "api_key": "k" * 32, **overrides})


def _live(**overrides: Any) -> Settings:
    broker = {"provider": "alpaca", "paper": False, "alpaca_api_key": LIVE_KEY, "alpaca_secret_key": "s" * 40}
    return _settings(**{"broker": broker, **overrides})


def _gates(settings: Settings | None = None, **kw: Any) -> GoLiveChecks:
    s = settings or _settings()
    return GoLiveChecks(s, build_container(s, "test"), clock=SimClock(NOW), **kw)


def _fails_with(result: CheckResult, detail: str, fix: str) -> None:
    assert not result.ok, result
    assert detail in result.detail, result.detail
    assert result.hint is not None and fix in result.hint, result.hint


async def test_safety_rules_pass_on_the_defaults_and_name_each_loosened_setting() -> None:
    assert (await _gates().safety_rules()).ok
    loose = _settings(risk={"allow_short": True, "max_position_pct": 0.9}, api_key=None)
    _fails_with(await _gates(loose).safety_rules(), "short selling is on",
                "set QUORUM_RISK__ALLOW_SHORT=false; set QUORUM_RISK__MAX_POSITION_PCT to at most 0.5; "
                "set QUORUM_API_KEY")


async def test_breaker_and_hard_limit_gates_pass_and_fail_when_bad_settings_load(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gates = _gates()
    assert (await gates.breaker()).ok
    result = await gates.hard_limits()
    assert result.ok and "5 out-of-range settings refused at start-up" in result.detail
    monkeypatch.setattr(gc, "load_settings", lambda **_: None)
    _fails_with(await gates.hard_limits(), "settings out of range were accepted: QUORUM_RISK__MAX_POSITION_PCT=1.5",
                "restore the bounds")


async def test_a_cycle_hit_by_a_database_error_rolls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    result = await _gates().rollback()
    assert result.ok and "left no order or event behind" in result.detail
    monkeypatch.setattr(gs._CommitFails, "__call__", lambda self: self.inner())  # the commit never fails
    _fails_with(await _gates().rollback(), "the cycle whose commit failed ended completed", "test_trading_cycle.py")


async def test_llm_retries_and_the_cap_hold_and_no_retries_fail() -> None:
    result = await _gates().llm()
    assert result.ok and "2 of 5 concurrent calls" in result.detail
    _fails_with(await _gates(_settings(llm={"max_retries": 0})).llm(), "a single timeout fails the agent",
                "QUORUM_LLM__MAX_RETRIES=3")


async def test_a_pipeline_that_breaks_an_invariant_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenRehearsal:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        async def run(self, emulator_hook: Any = None) -> dict[str, Any]:
            return {"sessions": 3, "cycles": 39, "failed_cycles": 0, "invariants": {
                "checked": 10, "violations": [{"rule": "cash_matches_fills", "evidence": "off by 3.00"}]}}

    monkeypatch.setattr(gs, "Rehearsal", BrokenRehearsal)
    _fails_with(await _gates().pipeline(), "cash_matches_fills: off by 3.00", "quorum rehearse")


@dataclass
class _Runtime:
    result: ToolResult

    @property
    def assistant(self) -> _Runtime:
        return self

    async def answer(self, *_: Any, **__: Any) -> ChatAnswer:
        return ChatAnswer("here", (self.result,), None, (), "router")

    async def close(self) -> None:
        return None


async def test_the_chat_gate_needs_an_ok_portfolio_answer() -> None:
    async def ok() -> Any:
        return _Runtime(ToolResult("portfolio", {}, True, "Equity $650"))

    async def broken() -> Any:
        return _Runtime(ToolResult("portfolio", {}, False, "portfolio failed (ProgrammingError)"))

    async def cannot_start() -> Any:
        raise ConfigurationError("QUORUM_CHAT__MODEL needs a key")

    assert (await _gates(open_chat=ok).chat()).detail == "answered by router: Equity $650"
    _fails_with(await _gates(open_chat=broken).chat(), "ProgrammingError", "quorum chat")
    _fails_with(await _gates(open_chat=cannot_start).chat(), "the chat cannot start", "quorum chat")


async def test_the_evals_gate_reads_the_latest_run() -> None:
    gates = _gates()
    _fails_with(await gates.evals(), "no eval run recorded", "/api/evals/run")
    async with gates._container.uow_factory()() as uow:
        await uow.eval_runs.add(EvalRunRecord("e-1", "live", NOW - timedelta(hours=3), "nightly", "k", "offline",
                                              {}, "ok"))
        await uow.commit()
    assert (await gates.evals()).ok


async def test_the_campaign_gate_measures_the_latest_campaign() -> None:
    async def none(*_: Any, **__: Any) -> CampaignStatus:
        raise CampaignNotFoundError("no campaign")

    async def met(uow_factory: Any, calendar: Any, scope: str, *, as_of: datetime) -> CampaignStatus:
        c = PaperCampaign("c", scope, as_of - timedelta(days=15), 10, "PA1", Decimal(650))
        return CampaignStatus(c, as_of, 10, (Criterion("sharpe", True, "1.2"),))

    _fails_with(await _gates(campaign_status=none).paper_campaign(), "no paper campaign", "quorum paper start")
    assert (await _gates(campaign_status=met).paper_campaign()).ok


async def test_the_backup_gate_restores_or_says_what_failed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dump = tmp_path / "quorum-x.dump"
    dump.write_bytes(b"x" * 4096)

    async def restored(*_: Any, **__: Any) -> tuple[Path, dict[str, int]]:
        return dump, {"events": 12, "orders": 3}

    async def broken(*_: Any, **__: Any) -> Any:
        raise DatabaseError("pg_restore failed (exit 1): permission denied to create database")

    gates = _gates()
    gates._container.database.override(providers.Object(("postgresql://db/quorum", "test database")))
    monkeypatch.setattr(gc, "backup_and_restore", restored)
    assert "restored into a scratch database: 12 events, 3 orders" in (await gates.backups()).detail
    monkeypatch.setattr(gc, "backup_and_restore", broken)
    _fails_with(await gates.backups(), "permission denied", "may CREATE DATABASE")


class _Channel:
    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name, self.error, self.sent = name, error, []  # type: ignore[var-annotated]

    async def send(self, alert: Any) -> None:
        if self.error:
            raise self.error
        self.sent.append(alert)


async def test_a_test_alert_must_reach_every_configured_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    _fails_with(await _gates().alerts(), "no alert channel configured", "QUORUM_ALERTS__DISCORD_WEBHOOK_URL")
    discord, email = _Channel("discord"), _Channel("email", RuntimeError("SES: sender not verified"))
    monkeypatch.setattr(gc, "build_channels", lambda _: {"discord": discord, "email": email})
    _fails_with(await _gates().alerts(), "email: RuntimeError: SES: sender not verified", "SES sender")
    assert discord.sent and discord.sent[0].title == "Quorum go-live check: test alert"
    monkeypatch.setattr(gc, "build_channels", lambda _: {"discord": discord})
    assert (await _gates().alerts()).detail.startswith("a test alert was delivered to discord")


class _Probe:
    def __init__(self, account: Account) -> None:
        self.account_value = account

    async def __aenter__(self) -> _Probe:
        return self

    async def __aexit__(self, *_: Any) -> None:
        return None

    async def account(self) -> Account:
        return self.account_value


async def test_the_live_account_gate_reads_the_live_account_and_checks_the_caps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _fails_with(await _gates().live_account(), "the simulated broker", "QUORUM_BROKER__PAPER=false")
    paper = _settings(broker={"provider": "alpaca", "alpaca_api_key": "PK1", "alpaca_secret_key": "s"})
    _fails_with(await _gates(paper).live_account(), "QUORUM_BROKER__PAPER=true", "live account's keys")
    asked: list[Settings] = []

    def probe(settings: Settings) -> _Probe:
        asked.append(settings)
        return _Probe(ACCOUNT)

    monkeypatch.setattr(gc, "alpaca_probe", probe)
    live = GoLiveChecks(_live(), build_container(_settings(), "test"), clock=SimClock(NOW))
    assert (await live.live_account()).ok and live.account == ACCOUNT
    assert asked[0].live_trading == LIVE_TRADING_ACK  # reading the account only, never an order
    small = GoLiveChecks(_live(risk={"starting_capital": "5000"}), build_container(_settings(), "test"),
                         clock=SimClock(NOW))
    _fails_with(await small.live_account(), "STARTING_CAPITAL=5000", "QUORUM_RISK__STARTING_CAPITAL=650")


def test_live_trading_needs_a_go_live_record_for_these_keys(tmp_path: Path) -> None:
    settings = _live(live_trading=LIVE_TRADING_ACK)
    with pytest.raises(ConfigurationError, match=r"no go-live record.*quorum golive"):
        settings.check_live_trading()
    from application.golive import GateOutcome, GoLiveRecord
    from entrypoints.golive_record import write_record

    record = GoLiveRecord(account_fingerprint(settings), Decimal(650), Decimal(650), "USD",
                          datetime.now(UTC) - timedelta(days=1), "me", (GateOutcome("breaker", True, "ok"),))
    write_record(settings.data_dir, record)
    settings.check_live_trading()
    stored = read_record(settings.data_dir)
    assert stored is not None and stored.activated_at is not None  # first live start activates it
    assert LIVE_KEY not in (settings.data_dir / "golive.json").read_text()
    other = _live(live_trading=LIVE_TRADING_ACK, broker={"provider": "alpaca", "paper": False,
                                                         "alpaca_api_key": "AKOTHER", "alpaca_secret_key": "s"})
    with pytest.raises(ConfigurationError, match="for another account"):
        other.check_live_trading()
    _settings(broker={"provider": "alpaca", "alpaca_api_key": "PK1"}).check_live_trading()  # paper: no record


@pytest.fixture
def fake_gates(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """GoLiveChecks whose gates are given by the test; the live account is ACCOUNT."""
    state: dict[str, Any] = {"results": {}}
    original = GoLiveChecks.checks

    def checks(self: GoLiveChecks) -> list[tuple[str, Any]]:
        self.account = ACCOUNT

        def gate(name: str) -> Any:
            async def run() -> CheckResult:
                return state["results"].get(name) or passed(f"{name} fine")
            return run

        return [(name, gate(name)) for name, _ in original(self)]

    monkeypatch.setattr(GoLiveChecks, "checks", checks)
    monkeypatch.setattr(golive_command, "configure_logging", lambda *_: None)  # keep the other tests' logging
    return state


def _cli(*args: str, **env: str) -> Any:
    from entrypoints.cli import app

    return CliRunner().invoke(app, ["golive", *args], env={"QUORUM_API_KEY": "k" * 32, **env})


def test_golive_refuses_to_switch_while_a_gate_fails(fake_gates: dict[str, Any], tmp_path: Path) -> None:
    fake_gates["results"]["paper_campaign"] = CheckResult("", False, "no paper campaign recorded",
                                                          "start one with `quorum paper start --days 10`")
    result = _cli()
    assert result.exit_code == 1
    assert "✗ paper_campaign" in result.output and "fix: start one with `quorum paper start --days 10`" in result.output
    assert "golive: 11 gates passed, 1 failed" in result.output
    assert "refusing to switch to live: 1 gates failed" in result.output
    assert not (tmp_path / ".quorum" / "golive.json").exists()
    checked = _cli("--check", "--json")
    assert checked.exit_code == 1
    assert json.loads(checked.stdout)["ok"] is False


def test_golive_writes_the_record_and_prints_the_environment_when_every_gate_passes(
        fake_gates: dict[str, Any], tmp_path: Path) -> None:
    env = {"QUORUM_BROKER__PROVIDER": "alpaca", "QUORUM_BROKER__PAPER": "false",
           "QUORUM_BROKER__ALPACA_API_KEY": LIVE_KEY, "QUORUM_BROKER__ALPACA_SECRET_KEY": "s" * 40}
    assert _cli("--check", **env).exit_code == 0
    assert not (tmp_path / ".quorum" / "golive.json").exists()
    result = _cli("--by", "alice", **env)
    assert result.exit_code == 0, result.output
    assert f"QUORUM_LIVE_TRADING={LIVE_TRADING_ACK}" in result.output and "QUORUM_BROKER__PAPER=false" in result.output
    record = read_record(tmp_path / ".quorum")
    assert record is not None and record.by == "alice" and record.equity == Decimal(650)
    assert record.account.startswith("alpaca-live:") and len(record.gates) == 12 and all(g.ok for g in record.gates)
