"""`quorum db ...`: migrations and status of the database."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path

import typer

from adapters.postgres import migrate
from adapters.postgres.backup import backup_database
from adapters.postgres.embedded import stop_embedded_server
from domain.errors import DatabaseError
from entrypoints.bootstrap import fail, start
from entrypoints.container import Container
from entrypoints.settings import Settings

app = typer.Typer(help="Database: migrations and status.", no_args_is_help=True)


def _start() -> tuple[Settings, Container, str, str]:
    settings, container = start()
    try:
        url, description = container.database()
    except (DatabaseError, ValueError) as exc:
        fail(str(exc), 1)
    return settings, container, url, description


def _url() -> tuple[str, str]:
    _, _, url, description = _start()
    return url, description


@app.command()
def upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply migrations (creates the vector extension and every table); with QUORUM_GRAFANA_DB_PASSWORD set, also
    let Grafana's read-only role log in with it."""
    settings, _, url, description = _start()
    migrate.upgrade(url, revision)
    st = migrate.status(url)
    typer.echo(f"database: {description}\nrevision: {st.current_revision} (head {st.head_revision})")
    if settings.grafana_db_password is not None and st.at_head:
        _grant_reporting(url, settings.grafana_db_password.get_secret_value())


def _grant_reporting(url: str, password: str) -> None:
    from adapters.postgres.reporting_role import REPORTING_ROLE, ensure_reporting_login

    try:
        asyncio.run(ensure_reporting_login(url, password))
    except (DatabaseError, ValueError) as exc:
        fail(str(exc), 1)
    typer.echo(f"grafana role: {REPORTING_ROLE} may log in (SELECT on the reporting views only)")


@app.command("grant-reporting")
def grant_reporting() -> None:
    """Let Grafana's read-only role (quorum_grafana) log in with QUORUM_GRAFANA_DB_PASSWORD."""
    settings, _, url, _ = _start()
    if settings.grafana_db_password is None:
        fail("set QUORUM_GRAFANA_DB_PASSWORD: the password Grafana's data source logs in with", 2)
    _grant_reporting(url, settings.grafana_db_password.get_secret_value())


def _confirmed(revision: str) -> bool:
    try:
        typed = typer.prompt(f"type the revision ({revision}) to confirm", default="", show_default=False)
    except typer.Abort:  # end of input (no terminal) or Ctrl-C
        return False
    return str(typed).strip() == revision


def _backup(settings: Settings, url: str, now: datetime) -> Path:
    try:
        return asyncio.run(backup_database(url, settings.schedule.backup_dir,
                                           keep_days=settings.schedule.backup_keep_days, now=now))
    except (DatabaseError, OSError) as exc:
        fail(f"backup failed, nothing was downgraded: {exc}", 1)


@app.command()
def downgrade(
    revision: str = typer.Argument(..., help="target revision, or 'base' to remove everything"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation (the backup is still taken)"),
) -> None:
    """Revert migrations down to REVISION: asks to type REVISION, then backs the database up first."""
    settings, container, url, description = _start()
    known = migrate.revisions(url)
    if revision != "base" and revision not in known:
        fail(f"unknown revision {revision!r}; use 'base' or one of: {', '.join(known)}", 2)
    try:
        current = migrate.status(url).current_revision or "base"
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        fail(f"cannot reach {description}: {exc}", 1)
    typer.echo(f"database: {description}\nrevision: {current} -> {revision}: the tables of the reverted "
               f"migrations are dropped with their rows")
    if not yes and not _confirmed(revision):
        fail("not confirmed: nothing was changed", 1)
    path = _backup(settings, url, container.system_clock().now())
    typer.echo(f"backup: {path}")
    migrate.downgrade(url, revision)
    st = migrate.status(url)
    typer.echo(f"revision: {st.current_revision or 'base'} (head {st.head_revision})")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """Which database is in use, the migration head and the vector extension version."""
    url, description = _url()
    try:
        st = migrate.status(url)
    except Exception as exc:  # noqa: BLE001 - any connection failure is reported the same way
        fail(f"cannot reach {description}: {exc}", 1)
    data = {
        "database": description,
        "server_version": st.server_version,
        "current_revision": st.current_revision,
        "head_revision": st.head_revision,
        "at_head": st.at_head,
        "vector_extension": st.vector_version,
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    typer.echo(f"database:         {description} (PostgreSQL {st.server_version})")
    typer.echo(f"migrations:       {st.current_revision or 'none applied'} / head {st.head_revision}"
               + ("" if st.at_head else "  -> run `quorum db upgrade`"))
    typer.echo(f"vector extension: {st.vector_version or 'not installed'}")


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL server (its data stays in QUORUM_DATABASE__EMBEDDED_DIR)."""
    settings, _ = start()
    if settings.effective_database_url:
        fail("DATABASE_URL is set: Quorum does not manage that server", 1)
    stopped = stop_embedded_server(settings.database.embedded_dir)
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
