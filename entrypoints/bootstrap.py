"""Start-up shared by every program: settings, logging, container, friendly failures."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import typer

from domain.errors import ConfigurationError, DatabaseError, QuorumError
from entrypoints.cli_errors import debug_enabled, print_traceback
from entrypoints.container import Container, Mode, build_container
from entrypoints.database_schema import SchemaBehindError
from entrypoints.logging_setup import configure_logging, register_secret
from entrypoints.settings import Settings, load_settings

T = TypeVar("T")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` to stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _url_passwords(url: str | None) -> list[str]:
    """The password of a URL as written and percent-decoded (none when the URL has no password)."""
    try:
        password = urlsplit(url).password if url else None
    except ValueError:
        return []
    return [password, unquote(password)] if password else []


def register_secrets(settings: Settings) -> None:
    """Register every secret setting (keys, URLs and the passwords inside them) for redaction."""
    urls = [settings.redis_url]
    for secret in (
        settings.api_key,
        settings.database_url,
        settings.database.url,
        settings.broker.alpaca_api_key,
        settings.broker.alpaca_secret_key,
        settings.llm.anthropic_api_key,
        settings.llm.openai_api_key,
        settings.llm.gemini_api_key,
        settings.alerts.discord_webhook_url,
        settings.langsmith_api_key,
        settings.grafana_db_password,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())
    urls += [u.get_secret_value() for u in (settings.database_url, settings.database.url) if u is not None]
    for url in urls:
        for password in _url_passwords(url):
            register_secret(password)



def start(mode: Mode | None = None, params: dict[str, Any] | None = None, *, kill_switch: bool = False,
          **overrides: Any) -> tuple[Settings, Container]:
    """Load settings (exiting with a message naming a bad setting), set up logging, build the container.

    Args:
        mode: the container's configuration; by default the trading venue of the settings: "live" for
            QUORUM_BROKER__PROVIDER=alpaca, "sim" for the simulated paper broker.
        params: the container's run parameters (`build_container`).
        kill_switch: the command only reduces risk (`quorum flatten`): a live account is not refused for a missing
            acknowledgement or go-live record, so positions can always be closed.
        overrides: settings values that win over the environment.
    """
    try:
        settings = load_settings(**overrides)
        if not kill_switch:
            settings.check_live_trading()
    except ConfigurationError as exc:
        fail(str(exc))
    register_secrets(settings)
    configure_logging(settings.log_level, settings.log_format, debug=debug_enabled())
    chosen: Mode = mode or ("live" if settings.broker.provider == "alpaca" else "sim")
    return settings, build_container(settings, chosen, **(params or {}))


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning Quorum's own errors into a one-line message and exit code 1 (2 for a database
    that needs `quorum db upgrade`); with --debug the traceback first."""
    try:
        return asyncio.run(coro)
    except QuorumError as exc:
        if debug_enabled():
            print_traceback(exc)
        _fail_quorum_error(exc)
    except KeyboardInterrupt:
        sys.exit(130)


def _fail_quorum_error(exc: QuorumError) -> NoReturn:
    if isinstance(exc, SchemaBehindError):
        fail(str(exc), 2)
    if isinstance(exc, DatabaseError | ConfigurationError):
        fail(str(exc), 1)
    fail(f"{type(exc).__name__}: {exc}", 1)
