"""`quorum db ...`: migrations and status of the database."""

from __future__ import annotations

import json

import typer

from adapters.postgres import migrate
from adapters.postgres.embedded import stop_embedded_server
from domain.errors import DatabaseError
from entrypoints.bootstrap import fail, start

app = typer.Typer(help="Database: migrations and status.", no_args_is_help=True)


def _url() -> tuple[str, str]:
    _, container = start()
    try:
        url, description = container.database()
    except (DatabaseError, ValueError) as exc:
        fail(str(exc), 1)
    return url, description


@app.command()
def upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Apply migrations (creates the vector extension and every table)."""
    url, description = _url()
    migrate.upgrade(url, revision)
    st = migrate.status(url)
    typer.echo(f"database: {description}\nrevision: {st.current_revision} (head {st.head_revision})")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="target revision, or 'base' to remove everything")) -> None:
    """Revert migrations down to REVISION."""
    url, description = _url()
    migrate.downgrade(url, revision)
    st = migrate.status(url)
    typer.echo(f"database: {description}\nrevision: {st.current_revision or 'base'} (head {st.head_revision})")


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
    """Stop the embedded PostgreSQL server (its data stays under .quorum/)."""
    settings, _ = start()
    if settings.effective_database_url:
        fail("DATABASE_URL is set: Quorum does not manage that server", 1)
    stopped = stop_embedded_server(settings.database.embedded_dir)
    typer.echo("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
