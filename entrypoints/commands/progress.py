"""The session progress bar shared by `quorum backtest` and `quorum rehearse`, the running count of
`quorum memory backfill-events` and the bar of `quorum memory reembed` (on stderr)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

SessionProgress = Callable[[int, int, date, Decimal], None]


@contextmanager
def session_progress(console: Console) -> Iterator[SessionProgress]:
    """A progress bar of sessions done, with the day and the equity; yields the callback to report each session."""
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[day]} equity ${task.fields[equity]}"), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task("sessions", total=None, day="", equity="")

        def progress(i: int, total: int, day: date, equity: Decimal) -> None:
            bar.update(task, completed=i, total=total, day=day.isoformat(), equity=str(equity))

        yield progress


@contextmanager
def count_progress(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A running count of items read and stored (no known total); yields the callback taking (read, stored)."""
    with Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"),
                  TextColumn("{task.completed} read, {task.fields[stored]} stored"), TimeElapsedColumn(),
                  console=console, transient=False) as bar:
        task = bar.add_task(description, total=None, stored=0)

        def progress(read: int, stored: int) -> None:
            bar.update(task, completed=read, stored=stored)

        yield progress


@contextmanager
def total_progress(console: Console, description: str) -> Iterator[Callable[[int, int], None]]:
    """A bar of items done out of a known total; yields the callback taking (done, total)."""
    with Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield progress
