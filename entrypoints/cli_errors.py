"""What the `quorum` command does with an error nothing else handled: one line, or the traceback with --debug."""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from entrypoints.logging_setup import redact

DEBUG_HINT = "(run with --debug for the traceback)"
_debug = {"on": False}


def set_debug(on: bool) -> None:
    """Remember whether `--debug` was given (tracebacks instead of one-line errors)."""
    _debug["on"] = on


def debug_enabled() -> bool:
    """Whether `--debug` was given to this process's command."""
    return _debug["on"]


def one_line(exc: BaseException) -> str:
    """`<Type>: <first line of the message>`, secrets masked."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


def print_traceback(exc: BaseException) -> None:
    """The traceback of `exc` on stderr, secrets masked."""
    sys.stderr.write(redact("".join(traceback.format_exception(exc))))


def report_uncaught(exc: BaseException) -> int:
    """Print an error no command handled (one line, after its traceback under --debug); return the exit code.

    An error with an `exit_code` of its own is one the user can act on (its message says how): `error: <message>`
    and that code. Any other: `error: <Type>: <message> (run with --debug for the traceback)` and 1.
    """
    if debug_enabled():
        print_traceback(exc)
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int) and code > 0:
        message = one_line(exc).removeprefix(f"{type(exc).__name__}: ")
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        return code
    typer.secho(f"error: {one_line(exc)} {DEBUG_HINT}", fg=typer.colors.RED, err=True)
    return 1


class FriendlyErrors(TyperGroup):
    """The root command group: an exception escaping any command becomes `error: <Type>: <message>` and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; exits, aborts, usage errors and interrupts pass through untouched."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # the last line of defence
            raise typer.Exit(report_uncaught(exc)) from exc
