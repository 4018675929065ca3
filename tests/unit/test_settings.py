"""Settings: defaults, environment, .env file, and start-up refusing wrong values by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

from domain.errors import ConfigurationError
from entrypoints.settings import LIVE_TRADING_ACK, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No QUORUM_* variable and no .env file of the developer's machine leaks into these tests."""
    for key in list(os.environ):
        if key.startswith("QUORUM_") or key in ("DATABASE_URL", "REDIS_URL"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    return str(info.value)


def test_defaults_are_offline_paper_and_embedded() -> None:
    s = load_settings()
    assert s.env == "live"
    assert s.broker.provider == "sim" and s.broker.paper is True
    assert {s.llm.signal_model, s.llm.risk_model, s.llm.validator_model, s.llm.picker_model} == {"offline"}
    assert s.effective_database_url is None
    assert s.redis_url is None
    assert s.embeddings.model == "sentence-transformers/all-MiniLM-L6-v2"  # the packaged model: here offline
    assert s.embeddings.dimension == 384
    assert s.embeddings.allow_download is False
    assert s.risk.min_stop_pct <= s.risk.default_stop_pct <= s.risk.max_stop_pct
    assert s.live_trading is None
    s.check_live_trading()


def test_environment_uses_the_quorum_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("ENV", "test")  # no prefix: not Quorum's
    s = load_settings()
    assert s.log_level == "DEBUG"
    assert s.env == "live"


def test_nested_values_use_a_double_underscore(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_RISK__MAX_POSITION_PCT", "0.1")
    monkeypatch.setenv("QUORUM_DISCOVERY__WEIGHTS__METRIC", "0.5")
    monkeypatch.setenv("QUORUM_EMBEDDINGS__BATCH_SIZE", "128")
    s = load_settings()
    assert s.risk.max_position_pct == 0.1
    assert s.discovery.weights.metric == 0.5
    assert s.discovery.weights.fuzzy == 0.4  # siblings keep their defaults
    assert s.embeddings.batch_size == 128


def test_dotenv_file_in_the_working_directory_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "QUORUM_LOG_LEVEL=WARNING\nQUORUM_RISK__MAX_POSITION_PCT=0.2\nDATABASE_URL=postgresql://u@db.example:5433/q\n"
    )
    s = load_settings()
    assert s.log_level == "WARNING"
    assert s.risk.max_position_pct == 0.2
    assert s.effective_database_url == "postgresql://u@db.example:5433/q"


def test_environment_wins_over_the_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QUORUM_LOG_LEVEL=WARNING\n")
    monkeypatch.setenv("QUORUM_LOG_LEVEL", "ERROR")
    assert load_settings().log_level == "ERROR"


def test_database_url_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://quorum:hunter22@db:5432/quorum")
    s = load_settings()
    assert s.effective_database_url == "postgresql://quorum:hunter22@db:5432/quorum"
    assert "hunter22" not in repr(s) and "hunter22" not in str(s.model_dump())


def test_database_url_falls_back_to_the_nested_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_DATABASE__URL", "postgresql://nested@db/quorum")
    assert load_settings().effective_database_url == "postgresql://nested@db/quorum"
    monkeypatch.setenv("DATABASE_URL", "postgresql://top@db/quorum")
    assert load_settings().effective_database_url == "postgresql://top@db/quorum"


def test_redis_url_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/0")
    assert load_settings().redis_url == "redis://localhost:6379/0"


def test_negative_weight_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, QUORUM_DISCOVERY__WEIGHTS__METRIC="-1")
    assert "QUORUM_DISCOVERY__WEIGHTS__METRIC" in message
    assert "greater than or equal to 0" in message


def test_unknown_embedding_model_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, QUORUM_EMBEDDINGS__MODEL="nope/nope")
    assert "QUORUM_EMBEDDINGS__MODEL" in message
    assert "nope/nope" in message
    assert "BAAI/bge-small-en-v1.5" in message  # says what would work


def test_a_local_model_directory_is_accepted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    model_dir = tmp_path / "my-model"
    model_dir.mkdir()
    monkeypatch.setenv("QUORUM_EMBEDDINGS__MODEL", str(model_dir))
    assert load_settings().embeddings.model == str(model_dir)


@pytest.mark.parametrize("field", ["SIGNAL_MODEL", "RISK_MODEL", "VALIDATOR_MODEL", "PICKER_MODEL"])
def test_unknown_llm_model_string_is_named(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    message = _error(monkeypatch, **{f"QUORUM_LLM__{field}": "gpt-4o"})
    assert f"QUORUM_LLM__{field}" in message
    assert "gpt-4o" in message


def test_llm_model_string_with_a_provider_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_LLM__SIGNAL_MODEL", "anthropic/claude-3-5-haiku-latest")
    assert load_settings().llm.signal_model == "anthropic/claude-3-5-haiku-latest"


def test_min_stop_above_max_stop_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, QUORUM_RISK__MIN_STOP_PCT="0.2", QUORUM_RISK__MAX_STOP_PCT="0.1")
    assert "QUORUM_RISK__MAX_STOP_PCT" in message
    assert "min_stop_pct" in message and "max_stop_pct" in message


def test_a_value_of_the_wrong_type_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, QUORUM_RISK__MAX_POSITION_PCT="a quarter")
    assert "QUORUM_RISK__MAX_POSITION_PCT" in message


def test_every_bad_value_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(
        monkeypatch, QUORUM_DISCOVERY__WEIGHTS__FUZZY="-0.5", QUORUM_EMBEDDINGS__MODEL="nope/nope",
        QUORUM_LLM__RISK_MODEL="mystery-model",
    )
    for name in ("QUORUM_DISCOVERY__WEIGHTS__FUZZY", "QUORUM_EMBEDDINGS__MODEL", "QUORUM_LLM__RISK_MODEL"):
        assert name in message


def test_a_bad_value_in_the_dotenv_file_is_named(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("QUORUM_DISCOVERY__WEIGHTS__LLM=-3\n")
    with pytest.raises(ConfigurationError, match="QUORUM_DISCOVERY__WEIGHTS__LLM"):
        load_settings()


def test_errors_never_echo_the_database_password(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _error(monkeypatch, DATABASE_URL="postgresql://u:hunter22@db/q", QUORUM_DISCOVERY__WEIGHTS__METRIC="-1")
    assert "hunter22" not in message


def _live(monkeypatch: pytest.MonkeyPatch, **extra: str) -> Settings:
    monkeypatch.setenv("QUORUM_BROKER__PROVIDER", "alpaca")
    monkeypatch.setenv("QUORUM_BROKER__PAPER", "false")
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return load_settings()


def test_live_trading_is_refused_without_the_acknowledgement(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _live(monkeypatch)
    with pytest.raises(ConfigurationError, match="QUORUM_LIVE_TRADING=I_UNDERSTAND"):
        settings.check_live_trading()


def test_live_trading_is_refused_with_a_wrong_acknowledgement(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _live(monkeypatch, QUORUM_LIVE_TRADING="yes")
    with pytest.raises(ConfigurationError, match="QUORUM_LIVE_TRADING"):
        settings.check_live_trading()


def test_live_trading_is_allowed_with_the_acknowledgement(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _live(monkeypatch, QUORUM_LIVE_TRADING=LIVE_TRADING_ACK)
    with pytest.raises(ConfigurationError, match="no go-live record"):  # `quorum golive` has not passed yet
        settings.check_live_trading()
    from datetime import UTC, datetime
    from decimal import Decimal

    from application.golive import GoLiveRecord
    from entrypoints.golive_record import account_fingerprint, write_record

    write_record(settings.data_dir, GoLiveRecord(account_fingerprint(settings), Decimal(650), Decimal(650), "USD",
                                                 datetime.now(UTC), "test"))
    settings.check_live_trading()
    assert settings.broker.paper is False


def test_paper_trading_needs_no_acknowledgement(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUORUM_BROKER__PROVIDER", "alpaca")
    load_settings().check_live_trading()


def test_start_up_stops_on_live_trading_without_the_acknowledgement(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from entrypoints.bootstrap import start

    _live(monkeypatch)
    with pytest.raises(typer.Exit) as info:
        start("test")
    assert info.value.exit_code != 0
    assert "QUORUM_LIVE_TRADING" in capsys.readouterr().err


def test_start_up_stops_on_a_bad_setting_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from entrypoints.bootstrap import start

    monkeypatch.setenv("QUORUM_EMBEDDINGS__MODEL", "nope/nope")
    with pytest.raises(typer.Exit) as info:
        start("test")
    assert info.value.exit_code != 0
    assert "QUORUM_EMBEDDINGS__MODEL" in capsys.readouterr().err
