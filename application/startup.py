"""Start-up reconciliation: before a process that trades serves or schedules anything, read positions, open
orders and cash from the broker and reconcile the database with them (the broker is the truth).

A failure at that moment (the broker cannot be read, or reconciling hit a bug) does not stop the process:
it is logged and written to the event log as a CRITICAL or WARNING SYSTEM_ERROR (which the alerts job
forwards), and every cycle reconciles again. Only a database that cannot even take that event stops it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from domain.errors import BrokerError
from domain.ports.jobs import Reconciler
from domain.ports.uow import UnitOfWorkFactory
from domain.system_events import process_started, startup_reconcile_failed

log = structlog.get_logger(__name__)


async def reconcile_at_startup(live: Reconciler, *, uow_factory: UnitOfWorkFactory, scope: str,
                               now: Callable[[], datetime]) -> int | None:
    """Reconcile with the broker once, at start-up.

    Args:
        live: what reconciles.
        uow_factory: where the SYSTEM_ERROR event goes when the broker cannot be reached.
        scope: the event log scope.
        now: the current time.

    Returns:
        The number of differences found (each one is in the event log), or None when reconciling failed: the
        error is then logged and recorded as a SYSTEM_ERROR event (WARNING for a broker error that retrying
        may cure, CRITICAL otherwise: refused credentials, a bug), and the process goes on.

    Raises:
        Exception: the original error, when not even the SYSTEM_ERROR event could be written (the database
            is down): the process should stop.
    """
    try:
        differences = await live.reconcile_now()
    except Exception as exc:  # noqa: BLE001 - any failure is reported; the cycles reconcile again
        error = f"{type(exc).__name__}: {exc}"
        retryable = isinstance(exc, BrokerError) and exc.retryable
        log.error("startup_reconcile_failed", error=error, retryable=retryable,
                  next_step="continuing; the next trading cycle reconciles with the broker again")
        what = "the broker could not be read" if isinstance(exc, BrokerError) else "reconciling failed"
        try:
            async with uow_factory() as uow:
                await uow.events.add([startup_reconcile_failed(at=now(), scope=scope, what=what, error=error,
                                                               retryable=retryable)])
                await uow.commit()
        except Exception as db_exc:
            log.error("startup_reconcile_event_not_written", error=f"{type(db_exc).__name__}: {db_exc}")
            raise exc from db_exc
        return None
    log.info("startup_reconciled", differences=differences)
    return differences


async def record_process_start(uow_factory: UnitOfWorkFactory, scope: str, *, at: datetime, process: str) -> bool:
    """Write the PROCESS_STARTED event of `process` (restarts are counted from these). Returns whether it was
    written; a database that cannot take it is logged, not raised (reconciling reports it)."""
    try:
        async with uow_factory() as uow:
            await uow.events.add([process_started(at=at, scope=scope, process=process)])
            await uow.commit()
    except Exception as exc:  # noqa: BLE001 - start-up goes on; the reconciliation that follows reports the database
        log.error("process_start_not_recorded", error=f"{type(exc).__name__}: {exc}")
        return False
    return True
