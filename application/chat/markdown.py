"""Tool results as readable markdown (the router's answers, and the assistant's when the model could not finish)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from domain.chat import EventCitation, ToolResult

MAX_TABLE_ROWS = 20
MAX_CELL_CHARS = 80
WINDOW_NAMES = {"today": "today", "week": "this week", "month": "this month", "all": "all time"}


def title(result: ToolResult) -> str:
    """A heading for one tool result, from the tool and its arguments."""
    args = result.arguments
    if result.name == "portfolio":
        return "Portfolio"
    if result.name == "performance":
        window = str(args.get("window", ""))
        return f"Performance, {WINDOW_NAMES.get(window, window)}"
    if result.name == "search_events":
        symbol = args.get("symbol")
        return f"Events about {symbol}" if symbol else "Events"
    if result.name == "patterns":
        return f"Patterns: {str(args.get('kind', '')).replace('_', ' ')}"
    if result.name == "query_sql":
        return "Query"
    if result.name == "control":
        return f"Control: {str(args.get('action', '')).replace('_', ' ')}"
    return result.name


def cell(value: Any) -> str:
    """One table cell: text without pipes or line breaks, cut at `MAX_CELL_CHARS`."""
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, limit: int = MAX_TABLE_ROWS) -> str:
    """A markdown table of the first `limit` rows, saying how many more there were."""
    if not columns:
        return ""
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n_{len(rows) - limit} more rows not shown._")
    return "\n".join(lines)


def citation(c: EventCitation) -> str:
    """One cited event: its time (UTC), cycle, type, symbol and id."""
    at = c.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [at, f"cycle {c.cycle_id}" if c.cycle_id else "no cycle", c.type]
    if c.symbol:
        parts.append(c.symbol)
    return f"- {', '.join(parts)} (event #{c.event_id})"


def result_markdown(result: ToolResult) -> str:
    """One tool result: a heading, its summary, its table (and SQL), the events it cites."""
    head = f"**{title(result)}**"
    if not result.ok:
        return f"{head}: could not answer. {result.text}".rstrip()
    parts = [head, result.text.strip()]
    sql = result.data.get("sql") if result.name == "query_sql" else None
    if isinstance(sql, str) and sql:
        parts.append(f"```sql\n{sql}\n```")
    if result.columns:
        parts.append(table(result.columns, result.rows))
    if result.citations:
        parts.append("Sources:\n" + "\n".join(citation(c) for c in result.citations))
    return "\n\n".join(p for p in parts if p)


def results_markdown(results: Sequence[ToolResult]) -> str:
    """Every result, in order, separated by blank lines."""
    return "\n\n".join(result_markdown(r) for r in results)


def tool_message(result: ToolResult, *, max_chars: int = 12_000) -> str:
    """A tool result as the model reads it (JSON), with rows dropped from the end until it fits `max_chars`."""
    rows = list(result.rows)
    while True:
        payload: dict[str, Any] = {"ok": result.ok, "text": result.text, "data": result.data}
        if result.columns:
            payload |= {"columns": list(result.columns), "rows": [list(r) for r in rows]}
            if len(rows) < len(result.rows):
                payload["rows_omitted"] = len(result.rows) - len(rows)
        if result.citations:
            payload["citations"] = [{"event_id": c.event_id, "at": c.at.isoformat(), "cycle_id": c.cycle_id,
                                     "type": c.type, "symbol": c.symbol} for c in result.citations]
        text = json.dumps(payload, default=str, ensure_ascii=False)
        if len(text) <= max_chars:
            return text
        if not rows:
            return text[: max_chars - 20] + " …(cut to fit)"
        rows = rows[: len(rows) // 2]
