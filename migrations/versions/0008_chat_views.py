"""Chat views and the chat's database role: documented read-only views in schema `chat`, a role that may read them
and nothing else, and dangerous functions revoked from PUBLIC (docs/chat.md, "Safe SQL: the database guard").

The role (``quorum_chat``, or ``QUORUM_CHAT__SQL_ROLE``) is created NOLOGIN; `quorum chat` gives it LOGIN and a
password at start. Its defaults: read-only transactions, a statement timeout, search_path ``chat``, small
work_mem and temp files. The views run with their owner's rights, so they call none of the revoked functions.
Function privileges are only changed when the migration runs as a superuser (otherwise it warns and the parser
guard and the role's missing grants still stand). The downgrade gives PUBLIC back what it had at initdb, drops
the schema and drops the role unless another database still grants it something.

Revision ID: 0008
Revises: 0007
"""

# ruff: noqa: S608 - the SQL is built from this file's constants and a role name checked against a pattern

from __future__ import annotations

import os
import re

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DEFAULT_ROLE = "quorum_chat"  # the default of settings.chat.sql_role
ROLE_SETTINGS = {
    "default_transaction_read_only": "on", "statement_timeout": "5s", "lock_timeout": "1s",
    "idle_in_transaction_session_timeout": "15s", "search_path": "chat", "work_mem": "4MB",
}
SUPERUSER_ROLE_SETTINGS = {"temp_file_limit": "32MB"}
CONNECTION_LIMIT = 8

REVOKED_FUNCTIONS = (
    "pg_sleep", "pg_sleep_for", "pg_sleep_until", "pg_terminate_backend", "pg_cancel_backend", "pg_read_file",
    "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "set_config", "pg_notify", "txid_current",
    "txid_current_if_assigned", "pg_current_xact_id", "pg_current_xact_id_if_assigned", "pg_reload_conf",
    "pg_rotate_logfile", "pg_logical_emit_message", "pg_create_logical_replication_slot",
    "pg_create_physical_replication_slot", "pg_sync_replication_slots", "pg_import_system_collations", "dblink",
    "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query", "repeat", "lpad", "rpad", "array_fill",
)
REVOKED_PATTERNS = ("lo\\_%", "pg\\_advisory%", "pg\\_try\\_advisory%", "query\\_to\\_xml%", "table\\_to\\_xml%",
                    "cursor\\_to\\_xml%", "schema\\_to\\_xml%", "database\\_to\\_xml%")


def _role() -> str:
    role = os.environ.get("QUORUM_CHAT__SQL_ROLE", DEFAULT_ROLE)
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", role):
        raise ValueError(f"QUORUM_CHAT__SQL_ROLE must be a lower-case SQL name, got {role!r}")
    return role


def _functions_sql() -> str:
    """The oids of the functions to revoke: listed by name or pattern, in any schema."""
    names = ", ".join(f"'{n}'" for n in REVOKED_FUNCTIONS)
    patterns = " OR ".join(f"p.proname LIKE '{p}'" for p in REVOKED_PATTERNS)
    return f"SELECT p.oid FROM pg_proc p WHERE p.proname IN ({names}) OR {patterns}"


def _num(path: str) -> str:
    return f"CASE WHEN jsonb_typeof(e.payload #> '{path}') = 'number' THEN (e.payload #> '{path}')::float8 END"


def _bool(path: str) -> str:
    return f"CASE WHEN jsonb_typeof(e.payload #> '{path}') = 'boolean' THEN (e.payload #> '{path}')::boolean END"


def _array(path: str) -> str:
    return f"CASE WHEN jsonb_typeof(e.payload #> '{path}') = 'array' THEN (e.payload #> '{path}')::text END"


def _suite_score(suite: str) -> str:
    path = f"'{{suites,{suite},score}}'"
    return f"CASE WHEN jsonb_typeof(r.document #> {path}) = 'number' THEN (r.document #> {path})::float8 END"


VIEWS: dict[str, str] = {
    "fills": """
        SELECT f.id, f.scope::text AS scope, f.at, f.symbol::text AS symbol, f.side::text AS side, f.qty, f.price,
               f.fee, round(f.qty * f.price, 2) AS notional, f.shadow, f.reason, f.cycle_id, f.client_order_id
        FROM public.fills f""",
    "positions_history": """
        WITH signed AS (
            SELECT f.*, CASE WHEN f.side = 'buy' THEN f.qty ELSE -f.qty END AS delta
            FROM public.fills f WHERE NOT f.shadow
        ), running AS (
            SELECT s.*, sum(s.delta) OVER (PARTITION BY s.scope, s.symbol ORDER BY s.at, s.id) AS position_qty
            FROM signed s
        ), episodes AS (
            SELECT r.*, sum(CASE WHEN r.position_qty - r.delta = 0 THEN 1 ELSE 0 END)
                       OVER (PARTITION BY r.scope, r.symbol ORDER BY r.at, r.id) AS episode
            FROM running r
        ), costed AS (
            SELECT e.*,
                   sum(CASE WHEN e.side = 'buy' THEN e.qty * e.price END) OVER w AS buy_cost,
                   sum(CASE WHEN e.side = 'buy' THEN e.qty END) OVER w AS buy_qty,
                   min(e.at) OVER (PARTITION BY e.scope, e.symbol, e.episode) AS opened_at
            FROM episodes e
            WINDOW w AS (PARTITION BY e.scope, e.symbol, e.episode ORDER BY e.at, e.id)
        )
        SELECT c.id AS fill_id, c.scope::text AS scope, c.symbol::text AS symbol, c.at, c.side::text AS side, c.qty,
               c.price, c.position_qty, round(c.buy_cost / nullif(c.buy_qty, 0), 9) AS avg_entry_price, c.opened_at,
               c.cycle_id
        FROM costed c""",
    "trades": """
        SELECT p.fill_id AS id, p.scope, p.symbol, p.opened_at, p.at AS closed_at, p.qty,
               p.avg_entry_price AS entry_price, p.price AS exit_price, f.fee,
               round((p.price - p.avg_entry_price) * p.qty - f.fee, 4) AS pnl,
               (p.price / nullif(p.avg_entry_price, 0) - 1)::float8 AS return_pct,
               (extract(epoch FROM p.at - p.opened_at) / 86400)::float8 AS holding_days,
               p.position_qty = 0 AS closes_position, f.reason AS exit_reason, p.cycle_id
        FROM chat.positions_history p JOIN public.fills f ON f.id = p.fill_id
        WHERE p.side = 'sell'""",
    "decisions": f"""
        SELECT e.id, e.scope::text AS scope, e.at, e.type::text AS type, e.cycle_id, e.symbol::text AS symbol,
               e.message,
               e.payload #>> '{{signal,action}}' AS action,
               {_num('{signal,confidence}')} AS confidence,
               e.payload ->> 'final' AS final,
               nullif(e.payload ->> 'reason', '') AS reason,
               coalesce(e.payload #>> '{{signal,reasoning}}', e.payload #>> '{{assessment,reasoning}}',
                        e.payload #>> '{{agent,reasoning}}') AS reasoning,
               coalesce({_num('{risk,position_pct}')}, {_num('{assessment,position_pct}')}) AS position_pct,
               coalesce({_num('{risk,stop_loss_pct}')}, {_num('{assessment,stop_loss_pct}')}) AS stop_loss_pct,
               coalesce({_bool('{validator_rules,approved}')}, {_bool('{rules,approved}')}) AS rules_approved,
               coalesce({_num('{validator_rules,confidence}')}, {_num('{rules,confidence}')}) AS rules_confidence,
               coalesce({_array('{validator_rules,warnings}')}, {_array('{rules,warnings}')}) AS rule_warnings,
               coalesce({_bool('{validator_agent,approve}')}, {_bool('{agent,approve}')}) AS validator_approved,
               coalesce({_array('{validator_agent,warnings}')}, {_array('{agent,warnings}')}) AS validator_warnings,
               {_array('{limits}')} AS limits_applied,
               coalesce(e.payload ->> 'limit', e.payload #>> '{{limits,rejected_by}}') AS rejected_by_limit,
               {_bool('{stop_exit}')} AS stop_exit
        FROM public.events e
        WHERE e.type IN ('signal', 'proposal_rejected', 'risk', 'validation', 'limit_applied')""",
    "events": """
        SELECT e.id, e.scope::text AS scope, e.at, e.type::text AS type, e.severity::text AS severity, e.message,
               e.cycle_id, e.symbol::text AS symbol, e.payload
        FROM public.events e""",
    "discovery": """
        SELECT 'suggestion'::text AS kind, s.scope::text AS scope, s.as_of AS at, s.symbol::text AS symbol,
               s.picker::text AS source, s.score, s.rank,
               CASE WHEN jsonb_typeof(s.reasons -> 'reasons') = 'array' THEN
                   (SELECT string_agg(r.value, '; ') FROM jsonb_array_elements_text(s.reasons -> 'reasons') AS r)
               END AS reason,
               s.run_id::text AS run_id, s.entry_price::numeric AS entry_price, s.fwd_return_1d, s.fwd_return_5d,
               s.fwd_return_20d, s.fwd_return_5d - s.universe_return_5d AS excess_return_5d,
               s.fwd_return_20d - s.universe_return_20d AS excess_return_20d,
               EXISTS (SELECT 1 FROM public.watchlist w WHERE w.scope = s.scope AND w.symbol = s.symbol)
                   AS on_watchlist
        FROM public.picker_suggestions s
        UNION ALL
        SELECT 'watchlist_' || c.change, c.scope::text, c.at, c.symbol::text, c.source::text, NULL::float8,
               NULL::integer, c.reason, NULL::text, NULL::numeric, NULL::float8, NULL::float8, NULL::float8,
               NULL::float8, NULL::float8,
               EXISTS (SELECT 1 FROM public.watchlist w WHERE w.scope = c.scope AND w.symbol = c.symbol)
        FROM public.watchlist_changes c""",
    "llm_calls": """
        SELECT l.id, l.scope::text AS scope, l.at, l.agent::text AS agent, l.provider::text AS provider,
               l.model::text AS model, l.prompt_tokens, l.completion_tokens, l.cost_usd, l.latency_ms, l.ok,
               l.cycle_id, l.error
        FROM public.llm_calls l""",
    "evals": f"""
        SELECT r.id::text AS id, r.scope::text AS scope, r.at, r.kind::text AS kind, r.llm,
               r.git_sha::text AS git_sha, r.verdict::text AS verdict, r.baseline_key::text AS baseline_key,
               {_suite_score('signal')} AS signal_score, {_suite_score('traps')} AS traps_score,
               {_suite_score('risk')} AS risk_score, {_suite_score('validator')} AS validator_score,
               CASE WHEN jsonb_typeof(r.document -> 'suites') = 'object' THEN
                   (SELECT sum((s.value ->> 'cost_usd')::float8) FROM jsonb_each(r.document -> 'suites') AS s
                    WHERE jsonb_typeof(s.value -> 'cost_usd') = 'number')
               END AS cost_usd
        FROM public.eval_runs r""",
}
"""Definitions in creation order (trades reads positions_history)."""

VIEW_DOCS: dict[str, tuple[str, dict[str, str]]] = {
    "trades": ("Closed trades: one row per real (not shadow) sell fill, with the position it (partly) closed. Win "
               "rate, P&L and holding periods come from here.", {
        "id": "id of the exit fill", "symbol": "ticker",
        "opened_at": "first fill of the position", "closed_at": "time of the exit fill", "qty": "shares sold",
        "entry_price": "average price of the position's buys", "exit_price": "price of the exit fill",
        "fee": "fee of the exit fill (USD)", "pnl": "(exit_price - entry_price) * qty - fee, in USD",
        "return_pct": "exit_price / entry_price - 1 (0.05 = +5 %)", "holding_days": "days from opened_at to closed_at",
        "closes_position": "true when the position was flat after this fill",
        "exit_reason": "why the exit was sent (e.g. stop, signal)", "cycle_id": "the cycle that booked the fill"}),
    "fills": ("Every execution, real and shadow (shadow fills are simulated while the circuit breaker is tripped).", {
        "id": "fill id", "symbol": "ticker", "at": "execution time (UTC)", "side": "'buy' or 'sell'", "qty": "shares",
        "price": "execution price (USD)", "fee": "fee paid on top of qty * price (USD)",
        "notional": "qty * price rounded to the cent", "shadow": "true for a simulated fill of the shadow book",
        "reason": "why the order was sent", "cycle_id": "the cycle that booked the fill",
        "client_order_id": "Quorum's order id"}),
    "decisions": ("The decision steps of each cycle, per symbol: the signal and final verdict (type 'signal'), "
                  "rejections ('proposal_rejected'), the risk agent's sizing ('risk'), the validators' judgement "
                  "('validation') and hard-limit adjustments ('limit_applied').", {
        "id": "event id", "at": "time of the cycle",
        "type": "signal, proposal_rejected, risk, validation or limit_applied", "cycle_id": "the cycle",
        "symbol": "ticker",
        "message": "one-line summary", "action": "the signal's proposal: BUY, SELL or HOLD",
        "confidence": "the signal's confidence, 0..1",
        "final": "the verdict after validation and limits (e.g. BUY, SELL, HOLD, REJECTED)",
        "reason": "why the verdict (or the rejection)", "reasoning": "the agent's reasoning in words",
        "position_pct": "the risk agent's target position as a share of equity",
        "stop_loss_pct": "the risk agent's stop distance (0.05 = 5 % below entry)",
        "rules_approved": "whether the rule validator approved",
        "rules_confidence": "confidence after the rule validator",
        "rule_warnings": "the rule validator's warnings (JSON array)",
        "validator_approved": "whether the validator agent approved",
        "validator_warnings": "the validator agent's concerns (JSON array)",
        "limits_applied": "hard limits that changed the proposal (JSON array)",
        "rejected_by_limit": "the hard limit that rejected the proposal, if any",
        "stop_exit": "true when the decision was a stop exit"}),
    "events": ("The event log: every step of every cycle, orders, fills, alerts, pauses, errors.", {
        "id": "event id (increasing)", "at": "when it happened (UTC)",
        "type": "event type, e.g. cycle_started, signal, order_submitted, order_filled, stop_triggered, "
                "breaker_tripped, trading_paused, system_error",
        "severity": "debug, info, warning or critical", "message": "what happened, in words",
        "cycle_id": "the cycle, if any", "symbol": "the ticker, if any",
        "payload": "details (read fields with payload ->> 'key')"}),
    "positions_history": ("The real position in each symbol after each real fill (oldest first per symbol).", {
        "fill_id": "the fill", "symbol": "ticker", "at": "time of the fill", "side": "'buy' or 'sell'",
        "qty": "shares of the fill",
        "price": "price of the fill", "position_qty": "shares held after the fill (0 = flat)",
        "avg_entry_price": "average price of the position's buys so far (after a closing sell: of the position it "
                           "closed)",
        "opened_at": "first fill of the position", "cycle_id": "the cycle that booked the fill"}),
    "discovery": ("Discovery: the pickers' suggestions per run (kind 'suggestion', with forward returns once known) "
                  "and watchlist changes (kind 'watchlist_add' or 'watchlist_remove').", {
        "kind": "suggestion, watchlist_add or watchlist_remove", "at": "time of the run or of the change",
        "symbol": "ticker",
        "source": "the picker (metric, fuzzy, llm, ensemble) or who changed the watchlist (manual, discovered)",
        "score": "the picker's score, 0..1", "rank": "1 = the picker's best of the run", "reason": "why, in words",
        "run_id": "the discovery run", "entry_price": "close at the run",
        "fwd_return_1d": "return over the next trading day", "fwd_return_5d": "return over the next 5 trading days",
        "fwd_return_20d": "return over the next 20 trading days",
        "excess_return_5d": "fwd_return_5d minus the universe's",
        "excess_return_20d": "fwd_return_20d minus the universe's",
        "on_watchlist": "whether the symbol is on the watchlist now"}),
    "llm_calls": ("Every LLM call of the agents: model, tokens, cost, latency, success.", {
        "id": "call id", "at": "time of the call", "agent": "signal, risk, validator, picker, ...",
        "provider": "who served it", "model": "the model", "prompt_tokens": "tokens sent",
        "completion_tokens": "tokens received", "cost_usd": "cost in USD", "latency_ms": "latency in milliseconds",
        "ok": "false when the call failed (the agent then held)", "cycle_id": "the cycle, if any",
        "error": "why it failed"}),
    "evals": ("Stored eval runs of the agents (nightly, CI, manual, baseline) with the regression gate's verdict and "
              "each suite's score (higher is better).", {
        "id": "run id", "at": "when it ran", "kind": "nightly, ci, manual or baseline",
        "llm": "what answered (offline, a model, or agent=model, ...)", "git_sha": "the code's commit",
        "verdict": "ok, noise, regression, refused or no_baseline",
        "baseline_key": "hash of prompts, models, prices and datasets the run is compared under",
        "signal_score": "score of the signal suite", "traps_score": "score of the traps suite",
        "risk_score": "score of the risk suite", "validator_score": "score of the validator suite",
        "cost_usd": "what the run's LLM calls cost"}),
}
COMMON_COLUMN_DOCS = {"scope": "account scope: 'live' for the running account, 'backtest:<id>' for a backtest"}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def upgrade() -> None:
    role = _role()
    op.execute("CREATE SCHEMA chat")
    op.execute("COMMENT ON SCHEMA chat IS 'Read-only views for the chat''s SQL executor (docs/chat.md)'")
    for name, body in VIEWS.items():
        op.execute(f"CREATE VIEW chat.{name} AS {body}")
        doc, columns = VIEW_DOCS[name]
        op.execute(f"COMMENT ON VIEW chat.{name} IS {_literal(doc)}")
        for column, text in {**COMMON_COLUMN_DOCS, **columns}.items():
            op.execute(f"COMMENT ON COLUMN chat.{name}.{column} IS {_literal(text)}")
    _create_role(role)
    op.execute(f"GRANT USAGE ON SCHEMA chat TO {role}")
    op.execute(f"GRANT SELECT ON {', '.join('chat.' + v for v in VIEWS)} TO {role}")
    for kind in ("TABLES", "SEQUENCES", "FUNCTIONS"):
        op.execute(f"REVOKE ALL ON ALL {kind} IN SCHEMA public FROM {role}")
    op.execute(f"""
        DO $$
        DECLARE f regprocedure;
        BEGIN
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            RAISE WARNING 'not a superuser: dangerous functions keep their PUBLIC EXECUTE privilege';
            RETURN;
          END IF;
          FOR f IN {_functions_sql()} LOOP
            EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
          END LOOP;
        END $$""")


def _create_role(role: str) -> None:
    settings = " ".join(f"EXECUTE format('ALTER ROLE {role} SET {k} = %L', '{v}');" for k, v in ROLE_SETTINGS.items())
    superuser_settings = " ".join(f"EXECUTE format('ALTER ROLE {role} SET {k} = %L', '{v}');"
                                  for k, v in SUPERUSER_ROLE_SETTINGS.items())
    op.execute(f"""
        DO $$
        DECLARE granted text;
        BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} NOLOGIN NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {CONNECTION_LIMIT};
          END IF;
          ALTER ROLE {role} NOINHERIT NOCREATEDB NOCREATEROLE CONNECTION LIMIT {CONNECTION_LIMIT};
          IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            ALTER ROLE {role} NOSUPERUSER NOREPLICATION NOBYPASSRLS;
            {superuser_settings}
          END IF;
          FOR granted IN SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                         JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = '{role}' LOOP
            EXECUTE format('REVOKE %I FROM {role}', granted);
          END LOOP;
          {settings}
        END $$""")


def downgrade() -> None:
    role = _role()
    op.execute(f"""
        DO $$
        DECLARE f regprocedure;
        BEGIN
          IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
            RETURN;
          END IF;
          FOR f IN {_functions_sql()} LOOP
            IF NOT EXISTS (SELECT 1 FROM pg_init_privs i WHERE i.objoid = f AND i.classoid = 'pg_proc'::regclass)
               OR EXISTS (SELECT 1 FROM pg_init_privs i, aclexplode(i.initprivs) a WHERE i.objoid = f
                          AND i.classoid = 'pg_proc'::regclass AND a.grantee = 0
                          AND a.privilege_type = 'EXECUTE') THEN
              EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', f);
            END IF;
          END LOOP;
        END $$""")
    op.execute("DROP SCHEMA chat CASCADE")
    op.execute(f"""
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            BEGIN
              EXECUTE 'DROP ROLE {role}';
            EXCEPTION WHEN dependent_objects_still_exist THEN
              RAISE NOTICE 'role {role} kept: another database still grants it privileges';
            END;
          END IF;
        END $$""")
