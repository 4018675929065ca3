"""Log lines: short readable lines on a terminal, JSON otherwise, QUORUM_LOG_FORMAT over both; secrets masked and
the cycle id kept in either format."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest
import structlog
import typer

from entrypoints.bootstrap import start
from entrypoints.logging_setup import configure_logging, register_secret, resolve_log_format

SECRET = "sk-log-format-secret-4411"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    old_structlog = structlog.get_config()
    root = logging.getLogger()
    old_handlers, old_level = root.handlers[:], root.level
    yield
    structlog.configure(**old_structlog)
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = old_handlers
    root.setLevel(old_level)


def emit() -> None:
    register_secret(SECRET)
    structlog.contextvars.bind_contextvars(cycle_id="c-20240102-0930-abc")
    log = structlog.get_logger("test")
    log.warning("order_rejected", symbol="AAPL", api_key=SECRET, note=f"key {SECRET} leaked?")
    try:
        raise RuntimeError("quote feed down\nsecond line of the message")
    except RuntimeError:
        log.exception("cycle_failed")
    logging.getLogger("quorum.stdlib").warning("stdlib says %s", SECRET)
    structlog.contextvars.clear_contextvars()


def test_auto_is_console_on_a_terminal_and_json_otherwise() -> None:
    assert resolve_log_format("auto", Terminal()) == "console"
    assert resolve_log_format("auto", io.StringIO()) == "json"
    assert resolve_log_format("json", Terminal()) == "json"
    assert resolve_log_format("console", io.StringIO()) == "console"
    with pytest.raises(ValueError, match="log format"):
        resolve_log_format("xml")


def test_a_terminal_gets_one_short_readable_line_per_event() -> None:
    stream = Terminal()
    configure_logging("INFO", stream=stream)
    emit()
    lines = ANSI.sub("", stream.getvalue()).splitlines()
    assert len(lines) == 3, lines
    assert not any(line.lstrip().startswith("{") for line in lines)
    warning, failure, stdlib = lines
    assert "order_rejected" in warning and "symbol=AAPL" in warning and "cycle_id=c-20240102-0930-abc" in warning
    assert "cycle_failed" in failure and "RuntimeError: quote feed down" in failure
    assert "Traceback" not in stream.getvalue() and "second line" not in stream.getvalue()
    assert "stdlib says ***" in stdlib and "cycle_id=c-20240102-0930-abc" in stdlib
    assert SECRET not in stream.getvalue()


def test_debug_console_lines_carry_the_traceback() -> None:
    stream = Terminal()
    configure_logging("INFO", "console", stream=stream, debug=True)
    emit()
    assert "Traceback" in stream.getvalue() and "second line of the message" in stream.getvalue()
    assert SECRET not in stream.getvalue()


def test_anything_else_gets_one_json_object_per_line_stdlib_records_included() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    emit()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["order_rejected", "cycle_failed", "stdlib says ***"]
    assert all(r["cycle_id"] == "c-20240102-0930-abc" for r in records)
    assert "Traceback" in records[1]["exception"] and records[2]["logger"] == "quorum.stdlib"
    assert records[0]["api_key"] == "***" and SECRET not in stream.getvalue()


@pytest.mark.parametrize(("setting", "terminal", "expected"), [
    (None, True, "console"), (None, False, "json"), ("json", True, "json"), ("console", False, "console")])
def test_quorum_log_format_overrides_the_terminal_check(monkeypatch: pytest.MonkeyPatch, setting: str | None,
                                                        terminal: bool, expected: str) -> None:
    stderr = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    if setting is not None:
        monkeypatch.setenv("QUORUM_LOG_FORMAT", setting)
    settings, _ = start("test")
    assert settings.log_format == (setting or "auto")
    structlog.get_logger("test").info("format_probe", n=1)
    [line] = [line for line in ANSI.sub("", stderr.getvalue()).splitlines() if "format_probe" in line]
    assert line.startswith("{") == (expected == "json")


def test_a_wrong_log_format_setting_is_refused_by_name(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QUORUM_LOG_FORMAT", "xml")
    with pytest.raises(typer.Exit) as info:
        start("test")
    assert info.value.exit_code == 2
    assert "QUORUM_LOG_FORMAT" in capsys.readouterr().err
