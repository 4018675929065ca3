"""`quorum memory ...`: search and add vector memory items; backfill the chat's event search; re-embed every stored
vector with the configured model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from application.chat.event_index import index_new_events
from application.memory_reembed import ReembedReport, reembed_stored
from domain.embedding_models import COLLECTIONS
from domain.memory import DEFAULT_SCOPE, MemoryFilters, MemoryKind, MemoryRecord
from domain.ports.memory import VectorMemory
from domain.ports.uow import UnitOfWork
from entrypoints.bootstrap import fail, run, start
from entrypoints.commands.progress import count_progress, total_progress
from entrypoints.container import Container, close_container
from entrypoints.wiring.embeddings import check_embeddings, check_model_available

app = typer.Typer(help="Vector memory: search and add items; backfill the event search; re-embed with the "
                  "configured model.", no_args_is_help=True)


def _memory(uow: UnitOfWork, kind: MemoryKind) -> VectorMemory:
    return {
        MemoryKind.TRADE: uow.trade_memory,
        MemoryKind.CONDITION: uow.condition_memory,
        MemoryKind.SYMBOL_CONTEXT: uow.symbol_memory,
    }[kind]


def _as_of(value: str | None, container: Container) -> datetime:
    if value is None:
        return container.system_clock().now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of must be an ISO date or datetime, got {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def search(
    text: str = typer.Argument(..., help="what to look for"),
    kind: MemoryKind = typer.Option(MemoryKind.TRADE, "--kind", help="which memory"),
    k: int = typer.Option(5, "--k", min=1, max=100, help="how many items"),
    symbol: str | None = typer.Option(None, help="only this symbol"),
    action: str | None = typer.Option(None, help="only this action (BUY/SELL)"),
    as_of: str | None = typer.Option(None, "--as-of", help="recall as of this time (default now)"),
    scope: str = typer.Option(DEFAULT_SCOPE, help="live, or backtest:<run id>"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Print the nearest stored items with their cosine distance."""
    if not text.strip():
        fail("the search text is empty")
    _, container = start()
    when = _as_of(as_of, container)
    filters = MemoryFilters(symbol=symbol.upper() if symbol else None,
                            action=action.upper() if action else None, scope=scope)

    async def go() -> list[dict[str, Any]]:
        await check_embeddings(container.embedder(), container.embedding_store())
        async with container.uow_factory()() as uow:
            items = await _memory(uow, kind).similar(text, k=k, as_of=when, filters=filters)
        return [
            {"distance": round(i.distance, 4), "id": i.record.id, "symbol": i.record.symbol,
             "action": i.record.action, "outcome": i.record.outcome, "return_pct": i.record.return_pct,
             "as_of": i.record.as_of.isoformat(), "text": i.record.text}
            for i in items
        ]

    rows = run(go())
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"no {kind.value} memories known at {when.isoformat()} in scope {scope}")
        return
    for r in rows:
        outcome = f" {r['outcome']}" if r["outcome"] else ""
        typer.echo(f"{r['distance']:.4f}  #{r['id']} {r['symbol'] or '-'} {r['action'] or ''}{outcome}  "
                   f"{r['as_of'][:10]}  {r['text']}")


@app.command()
def add(
    text: str = typer.Argument(..., help="the text to embed and store"),
    kind: MemoryKind = typer.Option(MemoryKind.TRADE, "--kind"),
    symbol: str | None = typer.Option(None),
    action: str | None = typer.Option(None),
    outcome: str | None = typer.Option(None, help="WIN, LOSS or FLAT"),
    return_pct: float | None = typer.Option(None, "--return", help="return as a fraction, e.g. -0.05"),
    as_of: str | None = typer.Option(None, "--as-of"),
    scope: str = typer.Option(DEFAULT_SCOPE),
) -> None:
    """Embed TEXT and store it in memory."""
    _, container = start()
    when = _as_of(as_of, container)
    record = MemoryRecord(kind, text, when, symbol=symbol.upper() if symbol else None,
                          action=action.upper() if action else None, outcome=outcome.upper() if outcome else None,
                          return_pct=return_pct, outcome_at=when if outcome else None, scope=scope)

    async def go() -> int:
        await check_embeddings(container.embedder(), container.embedding_store())
        async with container.uow_factory()() as uow:
            stored = await _memory(uow, kind).store([record])
            await uow.commit()
        if stored[0].id is None:
            raise RuntimeError("the repository returned the memory without its id")
        return stored[0].id

    typer.echo(f"stored {kind.value} memory #{run(go())}")


@app.command("backfill-events")
def backfill_events(
    batch: int = typer.Option(256, "--batch", min=1, max=10_000, help="events read and embedded per batch"),
    scope: str = typer.Option(DEFAULT_SCOPE, help="live, or backtest:<run id>"),
    from_start: bool = typer.Option(False, "--from-start", help="re-read the whole event log (fills any gap; "
                                    "events already indexed are not embedded again)"),
) -> None:
    """Index the event log for the chat's event search: every event not indexed yet, resumably (run it again
    after an interruption: nothing is indexed twice)."""
    _, container = start()

    async def go() -> int:
        try:
            await check_embeddings(container.embedder(), container.embedding_store())
            with count_progress(Console(stderr=True), f"indexing events of {scope}") as progress:
                return await index_new_events(container.uow_factory(), container.event_memory(), scope, batch=batch,
                                              from_start=from_start, progress=progress)
        finally:
            await close_container(container)

    typer.echo(f"indexed {run(go())} events of scope {scope} for the event search")


@app.command()
def reembed(
    batch: int = typer.Option(256, "--batch", min=1, max=10_000, help="texts embedded and replaced per transaction"),
) -> None:
    """Re-embed, with the configured model (QUORUM_EMBEDDINGS__MODEL), every stored vector another model made: the
    trade memories, market conditions, symbol context and event search. In batches, each replaced in one
    transaction; run it again after an interruption and it goes on where it stopped (nothing is embedded twice)."""
    _, container = start()

    async def go() -> ReembedReport:
        try:
            embedder = container.embedder()
            check_model_available(embedder)
            with total_progress(Console(stderr=True), f"re-embedding with {embedder.model_name}") as progress:
                return await reembed_stored(container.embedding_store(), embedder, batch=batch, progress=progress)
        finally:
            await close_container(container)

    report = run(go())
    if not report.total:
        typer.echo(f"every stored vector was made by {report.model}: nothing to re-embed")
        return
    where = ", ".join(f"{n} {COLLECTIONS.get(c, c)}" for c, n in report.reembedded.items())
    typer.echo(f"re-embedded {report.total} stored vectors with {report.model} ({where}) in {report.batches} "
               f"batches")
