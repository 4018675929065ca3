"""`quorum rehearse`: the live stack against the Alpaca-wire emulator; exit code 1 when an invariant broke."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from application.breaker_history import RESUME_POLICIES
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.backtest import _table
from entrypoints.commands.options import check_data_dirs, check_order, parse_cash, parse_day
from entrypoints.commands.paper import campaign_table
from entrypoints.commands.progress import session_progress
from entrypoints.rehearsal import Rehearsal, RehearsalOptions

err = Console(stderr=True)


def rehearse(
    start_day: str | None = typer.Option(None, "--start", help="first session (default: 20 sessions ago)"),
    end_day: str | None = typer.Option(None, "--end", help="last session (default: yesterday)"),
    data: list[Path] = typer.Option([], "--data", help="directory of daily (and 1-/5-minute) bar CSVs to replay "
                                    "(repeatable; default: the synthetic market)"),
    symbols: int = typer.Option(20, "--symbols", min=1, max=500, help="how many stocks the emulator lists"),
    speed: float = typer.Option(0.0, "--speed", min=0.0, help="simulated seconds per wall second (0: as fast as "
                                "possible)"),
    report: Path | None = typer.Option(None, "--report", help="report directory (default .quorum/reports/<run id>)"),
    cash: str = typer.Option("650", help="starting cash of the emulated account in USD"),
    resume: str = typer.Option("approve-when-eligible", "--resume", help="what the rehearsal does when the "
                               "circuit breaker may resume: approve-when-eligible or never"),
    as_json: bool = typer.Option(False, "--json", help="print summary.json instead of the table"),
    campaign: str | None = typer.Option(None, "--campaign", help="record the run as a paper campaign of this name "
                                        "and print its criteria at the end"),
) -> None:
    """Rehearse the live system (schedule, reconciliation, monitor, alerts, Alpaca adapters) against the Alpaca
    emulator replaying history, checking the invariants after every cycle; exit code 1 when one broke."""
    first, last = parse_day(start_day, "--start"), parse_day(end_day, "--end")
    check_order(first, last)
    if data and (first is None or last is None):
        fail("with --data give --start and --end inside the data's period")
    check_data_dirs(data)
    if resume not in RESUME_POLICIES:
        fail(f"--resume must be one of {', '.join(RESUME_POLICIES)}, got {resume!r}")
    money = parse_cash(cash)
    settings, boot = start()
    now = boot.system_clock().now()
    last = last or now.date() - timedelta(days=1)
    first = first or last - timedelta(days=28)
    if first > last:
        fail(f"--start {first} is after --end {last}")
    run_id = now.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    out = report or settings.data_dir / "reports" / f"rehearsal-{run_id}"
    opts = RehearsalOptions(first, last, out, tuple(data), symbols, money, speed, resume_policy=resume,  # type: ignore
                            campaign=campaign)
    summary = run(_run(settings, opts, run_id))
    if as_json:
        typer.echo(json.dumps(summary, indent=2, default=str))
    else:
        Console().print(_table(summary))
        inv = summary["invariants"]
        verdict = "all held" if not inv["violations"] else f"{len(inv['violations'])} VIOLATED"
        typer.echo(f"invariants: {inv['checked']} checks over {summary['cycles']} cycles, {verdict}")
        for v in inv["violations"][:20]:
            typer.echo(f"  {v['at']} {v['rule']}: {v['evidence']}")
        if "campaign" in summary:
            Console(width=160).print(campaign_table(summary["campaign"]))
        typer.echo(f"report: {out.resolve()}")
    if summary["invariants"]["violations"]:
        raise typer.Exit(1)


async def _run(settings: Any, opts: RehearsalOptions, run_id: str) -> dict[str, Any]:
    err.print(f"[bold]Quorum rehearsal[/] {run_id}: {opts.start} → {opts.end} against the Alpaca emulator")
    with session_progress(err) as progress:
        return await Rehearsal(settings, opts, run_id=run_id, progress=progress).run()
