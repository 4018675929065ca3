"""`PgUnitOfWork.lock_cycles`: one trading cycle per scope at a time, held by PostgreSQL itself.

Several units of work run at once on the test database; nothing sleeps: a waiting transaction is seen waiting
in `pg_locks`, and the short waits that must fail are PostgreSQL's own `lock_timeout`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from adapters.inmemory.hashing_embedder import HashingEmbedder
from adapters.postgres.uow import PgUnitOfWork, cycle_lock_key
from domain.trading_state import ControlState, TradingState

pytestmark = pytest.mark.integration
T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


@pytest.fixture
def open_uow(pg_sessionmaker: Any) -> Any:
    def make() -> PgUnitOfWork:
        return PgUnitOfWork(pg_sessionmaker, HashingEmbedder())

    return make


async def lock_timeout(uow: PgUnitOfWork) -> str:
    return str((await uow.session.execute(text("SHOW lock_timeout"))).scalar_one())


async def until_waiting(uow: PgUnitOfWork, pid: int) -> None:
    """Return once backend `pid` waits for an advisory lock (asked of PostgreSQL, round trip after round trip)."""
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = :pid")
    for _ in range(10_000):
        if (await uow.session.execute(query, {"pid": pid})).scalar_one():
            return
        await uow.rollback()        # a fresh snapshot of pg_locks
    raise AssertionError(f"backend {pid} never waited for the lock")


def test_the_lock_key_is_stable_and_differs_by_scope() -> None:
    """Workers of two releases running side by side must ask for the same lock."""
    assert cycle_lock_key("live") == -5889886906942429245
    assert cycle_lock_key("paper") == 1262719028637346682
    assert -2**63 <= cycle_lock_key("x" * 80) < 2**63


async def test_a_held_lock_is_refused_until_the_holder_commits_or_rolls_back(open_uow: Any, scope: str) -> None:
    async with open_uow() as a, open_uow() as b, open_uow() as c:
        assert await a.lock_cycles(scope, wait_seconds=0)
        await b.trading.save(scope, TradingState(control=ControlState(True, "op")), at=T0)
        before = await lock_timeout(b)

        assert not await b.lock_cycles(scope, wait_seconds=0)
        started = time.monotonic()
        assert not await b.lock_cycles(scope, wait_seconds=0.2)
        assert time.monotonic() - started >= 0.19                      # it did wait, then gave up
        # the refused wait left b's transaction usable, its work intact and its lock_timeout as it was
        assert await b.trading.load(scope) == TradingState(control=ControlState(True, "op"))
        assert await lock_timeout(b) == before

        await a.commit()
        assert await b.lock_cycles(scope, wait_seconds=0)
        assert not await c.lock_cycles(scope, wait_seconds=0)
        await b.rollback()
        assert await c.lock_cycles(scope, wait_seconds=0)
        assert not await a.lock_cycles(scope, wait_seconds=0)         # a's next transaction waits its turn too


async def test_the_lock_is_released_when_the_unit_of_work_is_left(open_uow: Any, scope: str) -> None:
    async with open_uow() as a:
        assert await a.lock_cycles(scope, wait_seconds=0)
    async with open_uow() as b:
        assert await b.lock_cycles(scope, wait_seconds=0)


async def test_a_waiting_transaction_gets_the_lock_as_soon_as_the_holder_commits(open_uow: Any, scope: str) -> None:
    async with open_uow() as a, open_uow() as b, open_uow() as watcher:
        assert await a.lock_cycles(scope, wait_seconds=0)
        pid = (await b.session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        before = await lock_timeout(b)
        waiting = asyncio.create_task(b.lock_cycles(scope, wait_seconds=60))
        await until_waiting(watcher, pid)
        assert not waiting.done()
        await a.commit()
        assert await asyncio.wait_for(waiting, 10)
        assert await lock_timeout(b) == before       # the wait's lock_timeout does not outlive it
        assert not await a.lock_cycles(scope, wait_seconds=0)


async def test_two_scopes_do_not_block_each_other(open_uow: Any, scope: str) -> None:
    async with open_uow() as a, open_uow() as b:
        assert await a.lock_cycles(f"{scope}:one", wait_seconds=0)
        assert await b.lock_cycles(f"{scope}:two", wait_seconds=0)
        assert not await b.lock_cycles(f"{scope}:one", wait_seconds=0)
        assert not await a.lock_cycles(f"{scope}:two", wait_seconds=0)
