"""Start-up shared by every program: settings, logging, container, friendly failures."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from domain.errors import ConfigurationError, DatabaseError, QuorumError
from entrypoints.container import Container, Mode, build_container
from entrypoints.logging_setup import configure_logging, register_secret
from entrypoints.settings import Settings, load_settings

T = TypeVar("T")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` to stderr and exit with `code`."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _register_secrets(settings: Settings) -> None:
    for secret in (
        settings.api_key,
        settings.database_url,
        settings.database.url,
        settings.broker.alpaca_api_key,
        settings.broker.alpaca_secret_key,
        settings.llm.anthropic_api_key,
        settings.llm.openai_api_key,
        settings.llm.gemini_api_key,
    ):
        if secret is not None:
            register_secret(secret.get_secret_value())


def start(mode: Mode = "live", **overrides: Any) -> tuple[Settings, Container]:
    """Load settings (exiting with a message naming a bad setting), set up logging, build the container."""
    try:
        settings = load_settings(**overrides)
        settings.check_live_trading()
    except ConfigurationError as exc:
        fail(str(exc))
    _register_secrets(settings)
    configure_logging(settings.log_level)
    return settings, build_container(settings, mode)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine, turning Quorum's own errors into a one-line message and exit code 1."""
    try:
        return asyncio.run(coro)
    except (DatabaseError, ConfigurationError) as exc:
        fail(str(exc), 1)
    except QuorumError as exc:
        fail(f"{type(exc).__name__}: {exc}", 1)
    except KeyboardInterrupt:
        sys.exit(130)
