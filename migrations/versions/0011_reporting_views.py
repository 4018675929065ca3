"""Reporting views and Grafana's database role: the dashboards read views in schema `reporting` through the role
``quorum_grafana``, which may read those views and nothing else (docs/deploy.md, "Grafana").

The role is created NOLOGIN; `quorum db upgrade` (or `quorum db grant-reporting`) gives it LOGIN and the password
QUORUM_GRAFANA_DB_PASSWORD. Its defaults: read-only transactions, a statement timeout, search_path ``reporting``.
The views run with their owner's rights, so the role reads no base table. The downgrade drops the schema and drops
the role unless another database still grants it something.

Revision ID: 0011
Revises: 0010
"""

# ruff: noqa: S608 - the SQL is built from this file's constants

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ROLE = "quorum_grafana"  # adapters/postgres/reporting_role.py REPORTING_ROLE
CONNECTION_LIMIT = 5
ROLE_SETTINGS = {
    "default_transaction_read_only": "on", "statement_timeout": "30s", "lock_timeout": "1s",
    "idle_in_transaction_session_timeout": "60s", "search_path": "reporting", "work_mem": "16MB",
}

VIEWS: dict[str, tuple[str, str]] = {
    "equity": ("Account equity, cash and gross exposure after every cycle, and the deposits net of withdrawals so "
               "far (USD).", """
        SELECT p.scope::text AS scope, p.at, p.equity, p.cash, p.exposure, p.net_deposits
        FROM public.equity_points p"""),
    "trades": ("Closed trades: one row per real sell fill, with the position it (partly) closed (from chat.trades).",
               """
        SELECT t.id, t.scope, t.symbol, t.opened_at, t.closed_at, t.qty, t.entry_price, t.exit_price, t.fee, t.pnl,
               t.return_pct, t.holding_days, t.closes_position, t.exit_reason, t.cycle_id
        FROM chat.trades t"""),
}
"""View name -> (documentation, body), in creation order."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    op.execute("CREATE SCHEMA reporting")
    op.execute("COMMENT ON SCHEMA reporting IS 'Read-only views for the Grafana dashboards (docs/deploy.md)'")
    for name, (doc, body) in VIEWS.items():
        op.execute(f"CREATE VIEW reporting.{name} AS {body}")
        op.execute(f"COMMENT ON VIEW reporting.{name} IS {_literal(doc)}")
    settings = " ".join(f"EXECUTE format('ALTER ROLE {ROLE} SET {k} = %L', '{v}');" for k, v in ROLE_SETTINGS.items())
    op.execute(f"""
        DO $$
        DECLARE granted text;
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            CREATE ROLE {ROLE} NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {CONNECTION_LIMIT};
          END IF;
          ALTER ROLE {ROLE} NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {CONNECTION_LIMIT};
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            ALTER ROLE {ROLE} NOSUPERUSER NOREPLICATION NOBYPASSRLS;
          END IF;
          FOR granted IN SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                         JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{ROLE}' LOOP
            EXECUTE format('REVOKE %I FROM {ROLE}', granted);
          END LOOP;
          {settings}
        END $$""")
    op.execute(f"GRANT USAGE ON SCHEMA reporting TO {ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join('reporting.' + v for v in VIEWS)} TO {ROLE}")
    for schema in ("public", "chat"):
        for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
            op.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA {schema} FROM {ROLE}")


def downgrade() -> None:
    op.execute("DROP SCHEMA reporting CASCADE")
    op.execute(f"""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
            BEGIN
              EXECUTE 'DROP ROLE {ROLE}';
            EXCEPTION WHEN dependent_objects_still_exist THEN
              RAISE NOTICE 'role {ROLE} kept: another database still grants it privileges';
            END;
          END IF;
        END $$""")
