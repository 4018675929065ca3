"""The parser guard of the chat's SQL executor: one read-only SELECT over allowlisted relations.

This is the first of two guards (docs/chat.md, "Safe SQL: the parser guard"). It parses the model's
SQL with sqlglot (Postgres dialect) and refuses anything that is not exactly one SELECT (a WITH or a
UNION of SELECTs included) over the allowed relations and its own CTEs, calling only allowlisted
functions. Schema-qualified names are refused, ``public.trades`` included: the allowed relations are
bare names. The outer LIMIT is clamped to ``max_limit`` (added when missing, ``LIMIT ALL`` treated as
missing). The result is re-rendered without comments, so a comment cannot hide a second statement.
The database guard (role, read-only transaction, timeouts, extended protocol) still has to back it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.expressions.datatypes import DType

from domain.errors import UnsafeQueryError

DIALECT = "postgres"

DEFAULT_FUNCTIONS: frozenset[str] = frozenset({
    "count", "sum", "avg", "min", "max", "round", "abs", "coalesce", "nullif", "greatest", "least",
    "lower", "upper", "date_trunc", "extract", "cast", "case", "row_number", "rank", "now", "current_date",
})
"""Functions a chat query may call: aggregates, arithmetic, text case, dates; nothing that reads state."""

_FUNCTION_NAMES: dict[type[exp.Expr], str] = {
    exp.TimestampTrunc: "date_trunc",
    exp.DateTrunc: "date_trunc",
    exp.Cast: "cast",
    exp.Case: "case",
    exp.If: "case",
    exp.CurrentTimestamp: "now",
    exp.CurrentDate: "current_date",
    exp.ExplodingGenerateSeries: "generate_series",
}

_OPERATORS: tuple[type[exp.Expr], ...] = (exp.Binary, exp.Connector, exp.Unary, exp.Predicate)
"""sqlglot models AND, OR, EXISTS, ~, ->> and other built-in operators as functions; they are syntax, not calls."""

_FORBIDDEN_NODES: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.DML, "a data-modifying statement"),
    (exp.Merge, "MERGE"),
    (exp.Create, "CREATE"),
    (exp.Drop, "DROP"),
    (exp.Alter, "ALTER"),
    (exp.TruncateTable, "TRUNCATE"),
    (exp.Copy, "COPY"),
    (exp.Command, "a command"),
    (exp.Set, "SET"),
    (exp.Transaction, "a transaction statement"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
    (exp.Into, "SELECT INTO"),
    (exp.Lock, "a locking clause (FOR UPDATE/SHARE)"),
    (exp.Placeholder, "a parameter placeholder"),
    (exp.Parameter, "a parameter"),
)

_CAST_TYPES: frozenset[DType] = frozenset({
    exp.DataType.Type.INT, exp.DataType.Type.BIGINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.DECIMAL,
    exp.DataType.Type.DOUBLE, exp.DataType.Type.FLOAT, exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR,
    exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.BOOLEAN, exp.DataType.Type.INTERVAL,
})


@dataclass(frozen=True, slots=True)
class GuardedQuery:
    """A query that passed the parser guard.

    Attributes:
        sql: the query re-rendered as Postgres SQL, without comments, with its LIMIT clamped.
        relations: the allowed relations it reads (CTE names excluded).
    """

    sql: str
    relations: frozenset[str]


def check_select(sql: str, *, relations: frozenset[str], functions: frozenset[str], max_limit: int) -> GuardedQuery:
    """Check a model-written query against the allowlists and clamp its LIMIT.

    Args:
        sql: the SQL to check.
        relations: relation (view) names the query may read, lower case.
        functions: function names the query may call, lower case (see ``DEFAULT_FUNCTIONS``).
        max_limit: the most rows the query may return; must be positive.

    Returns:
        The re-rendered query and the relations it reads.

    Raises:
        UnsafeQueryError: the SQL does not parse or uses anything outside the allowlists; the message
            names what was refused.
    """
    if max_limit < 1:
        raise ValueError(f"max_limit must be positive, got {max_limit}")
    root = _parse_one(sql)
    for node in root.walk():
        _check_node(node, functions)
    used = frozenset(_check_table(table, relations) for table in root.find_all(exp.Table)) - {""}
    _clamp_limit(root, max_limit)
    return GuardedQuery(sql=root.sql(dialect=DIALECT, comments=False), relations=used)


def _parse_one(sql: str) -> exp.Query:
    if not sql.strip():
        raise UnsafeQueryError("refused: the query is empty")
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as error:
        raise UnsafeQueryError(f"refused: the query does not parse ({str(error).splitlines()[0]})") from error
    if len(statements) != 1:
        raise UnsafeQueryError(f"refused: exactly one statement is allowed, got {len(statements)}")
    root = statements[0]
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        raise UnsafeQueryError(f"refused: only SELECT is allowed, got {_describe(root)}")
    return root


def _check_node(node: exp.Expr, functions: frozenset[str]) -> None:
    for kind, label in _FORBIDDEN_NODES:
        if isinstance(node, kind):
            raise UnsafeQueryError(f"refused: {label} is not allowed")
    if isinstance(node, exp.With) and node.args.get("recursive"):
        raise UnsafeQueryError("refused: WITH RECURSIVE is not allowed")
    if isinstance(node, exp.Func) and not isinstance(node, _OPERATORS):
        _check_function(node, functions)
    if isinstance(node, (exp.Cast, exp.TryCast)):
        target = node.to
        if not isinstance(target, exp.DataType) or target.this not in _CAST_TYPES:
            raise UnsafeQueryError(f"refused: cast to {target.sql(dialect=DIALECT)} is not allowed")


def _check_function(node: exp.Func, functions: frozenset[str]) -> None:
    name = _function_name(node)
    if isinstance(node.parent, exp.Dot):
        raise UnsafeQueryError(f"refused: schema-qualified function {node.parent.sql(dialect=DIALECT)}")
    if isinstance(node, exp.Anonymous) and isinstance(node.this, exp.Identifier) and node.this.quoted:
        raise UnsafeQueryError(f"refused: quoted function name {name!r}")
    if name not in functions:
        raise UnsafeQueryError(f"refused: function {name!r} is not allowed")


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return _FUNCTION_NAMES.get(type(node), node.sql_name().lower())


def _check_table(table: exp.Table, relations: frozenset[str]) -> str:
    """Return the allowed relation the table reads, or "" for a CTE or a table function."""
    if not isinstance(table.this, exp.Identifier):
        return ""  # a function in FROM: _check_function has judged it
    qualified = table.sql(dialect=DIALECT, comments=False)
    if table.args.get("db") or table.args.get("catalog"):
        raise UnsafeQueryError(f"refused: schema-qualified relation {qualified}; use the bare view name")
    name = table.name
    if table.this.quoted and name != name.lower():
        raise UnsafeQueryError(f"refused: relation {qualified} is not allowed")
    if name.lower() in _visible_ctes(table):
        return ""
    if name.lower() not in relations:
        raise UnsafeQueryError(f"refused: relation {name!r} is not allowed")
    return name.lower()


def _visible_ctes(node: exp.Expr) -> set[str]:
    """CTE names in scope at ``node``: a CTE sees only the CTEs listed before it, the body sees all."""
    visible: set[str] = set()
    child, parent = node, node.parent
    while parent is not None:
        if isinstance(parent, exp.With) and isinstance(child, exp.CTE):
            earlier = parent.expressions[: child.index or 0]
            visible.update(cte.alias_or_name.lower() for cte in earlier)
        else:
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With) and child is not with_:
                visible.update(cte.alias_or_name.lower() for cte in with_.expressions)
        child, parent = parent, parent.parent
    return visible


def _clamp_limit(root: exp.Query, max_limit: int) -> None:
    limit = root.args.get("limit")
    if isinstance(limit, exp.Fetch):
        raise UnsafeQueryError("refused: FETCH FIRST is not allowed; use LIMIT")
    rows = max_limit
    if isinstance(limit, exp.Limit):
        value = limit.expression
        if isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit():
            rows = min(int(value.this), max_limit)
        elif not (isinstance(value, exp.Var) and value.name.upper() == "ALL"):
            raise UnsafeQueryError(f"refused: LIMIT {value.sql(dialect=DIALECT)} is not a whole number")
    root.set("limit", exp.Limit(expression=exp.Literal.number(rows)))


def _describe(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()
