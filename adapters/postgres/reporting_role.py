"""Grafana's database role: migration 0011 creates ``quorum_grafana`` NOLOGIN with SELECT on the views of schema
``reporting`` only; `ensure_reporting_login` (run as the owner by `quorum db upgrade` when QUORUM_GRAFANA_DB_PASSWORD
is set, or by `quorum db grant-reporting`) lets it log in with that password, after checking it can do no more."""

from __future__ import annotations

from adapters.postgres.chat_role import ensure_view_reader_login

REPORTING_ROLE = "quorum_grafana"
REPORTING_SCHEMA = "reporting"
REPORTING_VIEWS = ("equity", "trades")


async def ensure_reporting_login(owner_url: str, password: str) -> None:
    """Let the Grafana role log in with `password`, SELECT on the reporting views granted again.

    Args:
        owner_url: the database URL of the schema's owner (the one migrations run with).
        password: the role's password (printable ASCII), the one Grafana's data source logs in with.

    Raises:
        DatabaseError: the role does not exist (migration 0011 not applied), could do more than read, or the owner
            may not alter it.
        ValueError: the password is empty or not printable ASCII.
    """
    await ensure_view_reader_login(owner_url, REPORTING_ROLE, password, schema=REPORTING_SCHEMA,
                                   views=REPORTING_VIEWS, what="Grafana", migration="0011")
