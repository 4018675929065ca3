"""When each background job is due: pure functions of the time, the market calendar and the last run.

Every job kind has *slots*, the instants it is meant to run at:

- ``cycle``: five minutes after the open, then every ``cycle_minutes`` after the open, until the close;
- ``discovery``: at the open, then every ``discovery_hours`` hours, until the close;
- ``forward_returns``, ``market_conditions``, ``daily_summary``, ``paper_report`` (the paper campaign's daily
  report): once per session, ``after_close_delay`` after the close (early closes included);
- ``backup``: every night at ``backup_time`` New York time, trading day or not;
- ``evals``: every night at ``evals_time`` New York time (02:00, in EST or EDT as the date has it), trading day
  or not: the nightly eval run and its regression gate;
- ``alerts``: every ``alerts_minutes`` (on the minute, UTC), day and night, market open or not; the slots
  that reach a multiple of ``alert_retry_minutes`` also retry undelivered alerts (`alert_retry_due`).

A job is due when its latest slot at or before ``now`` is later than the slot it last ran for and not
older than the kind's grace period (a scheduler that was down does not fire a stale cycle, but does
catch up on the after-close jobs overnight). ``last_run`` is always the *slot* a job ran for, so the
answer never depends on how late the scheduler ticked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args

from domain.ports.clock import MarketCalendar

JobKind = Literal["cycle", "discovery", "forward_returns", "market_conditions", "daily_summary", "paper_report",
                  "backup", "alerts", "evals"]
JOB_KINDS: tuple[JobKind, ...] = get_args(JobKind)
AFTER_CLOSE_KINDS: frozenset[JobKind] = frozenset({"forward_returns", "market_conditions", "daily_summary",
                                                   "paper_report"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOOKBACK_DAYS = 10
_LOOKAHEAD_DAYS = 14


@dataclass(frozen=True)
class ScheduleConfig:
    """Timing of the background jobs.

    Attributes:
        cycle_minutes: minutes between two scheduled trading cycles in market hours.
        open_delay: the first cycle of a session runs this long after the open.
        discovery_hours: hours between two discovery runs in market hours.
        after_close_delay: forward returns, market conditions and the daily summary run this long after the close.
        backup_time: New York wall time of the nightly database backup.
        evals_time: New York wall time of the nightly evals.
        alerts_minutes: minutes between two runs of the alerts job (forwarding new events to the channels).
        alert_retry_minutes: undelivered alerts are tried again every this many minutes (by the alerts job).
        cycle_grace: a cycle slot older than this (or than `cycle_minutes`, if shorter) is skipped, not caught up.
        discovery_grace: a discovery slot older than this is skipped.
        after_close_grace: an after-close slot older than this is skipped.
        backup_grace: a backup slot older than this is skipped.
        evals_grace: a nightly evals slot older than this is skipped.
    """

    cycle_minutes: int = 30
    open_delay: timedelta = timedelta(minutes=5)
    discovery_hours: int = 4
    after_close_delay: timedelta = timedelta(minutes=15)
    backup_time: time = time(2, 0)
    evals_time: time = time(2, 0)
    alerts_minutes: int = 1
    alert_retry_minutes: int = 5
    cycle_grace: timedelta = timedelta(minutes=10)
    discovery_grace: timedelta = timedelta(hours=1)
    after_close_grace: timedelta = timedelta(hours=20)
    backup_grace: timedelta = timedelta(hours=12)
    evals_grace: timedelta = timedelta(hours=12)

    def __post_init__(self) -> None:
        if self.cycle_minutes < 1:
            raise ValueError(f"cycle_minutes must be at least 1, got {self.cycle_minutes}")
        if self.discovery_hours < 1:
            raise ValueError(f"discovery_hours must be at least 1, got {self.discovery_hours}")
        if self.alerts_minutes < 1 or self.alert_retry_minutes < 1:
            raise ValueError(f"alerts_minutes and alert_retry_minutes must be at least 1, got {self.alerts_minutes} "
                             f"and {self.alert_retry_minutes}")
        if self.open_delay < timedelta(0) or self.after_close_delay < timedelta(0):
            raise ValueError("open_delay and after_close_delay must not be negative")

    def grace(self, kind: JobKind) -> timedelta:
        """How old a slot of `kind` may be and still run."""
        if kind == "cycle":
            return min(self.cycle_grace, timedelta(minutes=self.cycle_minutes))
        if kind == "discovery":
            return self.discovery_grace
        if kind == "backup":
            return self.backup_grace
        if kind == "evals":
            return self.evals_grace
        if kind == "alerts":
            return timedelta(minutes=self.alerts_minutes)
        return self.after_close_grace


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {at!r}")


def _every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, at = [], start
    while at < end:
        out.append(at)
        at += step
    return out


def session_slots(kind: JobKind, day: date, calendar: MarketCalendar, config: ScheduleConfig) -> list[datetime]:
    """The slots of a market-hours or after-close `kind` on trading day `day`, in order (UTC)."""
    open_, close = calendar.session_open(day), calendar.session_close(day)
    if kind == "cycle":
        step = timedelta(minutes=config.cycle_minutes)
        slots = set(_every(open_ + step, close, step))
        if open_ + config.open_delay < close:
            slots.add(open_ + config.open_delay)
        return sorted(slots)
    if kind == "discovery":
        return _every(open_, close, timedelta(hours=config.discovery_hours))
    if kind in AFTER_CLOSE_KINDS:
        return [close + config.after_close_delay]
    raise ValueError(f"{kind!r} does not follow market sessions")


NIGHTLY_KINDS: frozenset[JobKind] = frozenset({"backup", "evals"})


def _nightly_slot(kind: JobKind, day: date, config: ScheduleConfig, calendar: MarketCalendar) -> datetime:
    """`day` at the kind's New York wall time, in UTC. A wall time the spring-forward gap skips (02:00-02:59 on the
    second Sunday of March) is read with the offset before the change (EST), so it runs at 03:00 EDT that night;
    in the autumn 02:00 comes once (the repeated hour is 01:00-01:59)."""
    wall = config.backup_time if kind == "backup" else config.evals_time
    return datetime.combine(day, wall, calendar.tz).astimezone(UTC)


def _minute_slot(now: datetime, minutes: int) -> datetime:
    """The latest instant at or before `now` that is a whole multiple of `minutes` since the Unix epoch (UTC)."""
    step = timedelta(minutes=minutes)
    return _EPOCH + ((now - _EPOCH) // step) * step


def alert_retry_due(slot: datetime, config: ScheduleConfig = ScheduleConfig()) -> bool:
    """Whether the alerts job of `slot` also retries undelivered alerts.

    It does when a multiple of `alert_retry_minutes` (since the Unix epoch, so on the hour and every five
    minutes past it by default) falls in the slot's own period, ``(slot - alerts_minutes, slot]``.
    """
    _require_aware(slot, "slot")
    retry = timedelta(minutes=config.alert_retry_minutes)
    since_epoch = slot - _EPOCH
    return since_epoch // retry != (since_epoch - timedelta(minutes=config.alerts_minutes)) // retry


def latest_slot(kind: JobKind, now: datetime, calendar: MarketCalendar,
                config: ScheduleConfig = ScheduleConfig()) -> datetime | None:
    """The latest slot of `kind` at or before `now` within the last ten days, or None."""
    _require_aware(now, "now")
    if kind == "alerts":
        return _minute_slot(now, config.alerts_minutes)
    today = now.astimezone(calendar.tz).date()
    if kind in NIGHTLY_KINDS:
        slot = _nightly_slot(kind, today, config, calendar)
        return slot if slot <= now else _nightly_slot(kind, today - timedelta(days=1), config, calendar)
    for day in reversed(calendar.sessions(today - timedelta(days=_LOOKBACK_DAYS), today)):
        past = [s for s in session_slots(kind, day, calendar, config) if s <= now]
        if past:
            return past[-1]
    return None


def next_slot(kind: JobKind, now: datetime, calendar: MarketCalendar,
              config: ScheduleConfig = ScheduleConfig()) -> datetime | None:
    """The first slot of `kind` strictly after `now` within the next two weeks, or None."""
    _require_aware(now, "now")
    if kind == "alerts":
        return _minute_slot(now, config.alerts_minutes) + timedelta(minutes=config.alerts_minutes)
    today = now.astimezone(calendar.tz).date()
    if kind in NIGHTLY_KINDS:
        slot = _nightly_slot(kind, today, config, calendar)
        return slot if slot > now else _nightly_slot(kind, today + timedelta(days=1), config, calendar)
    for day in calendar.sessions(today - timedelta(days=1), today + timedelta(days=_LOOKAHEAD_DAYS)):
        future = [s for s in session_slots(kind, day, calendar, config) if s > now]
        if future:
            return future[0]
    return None


def due_slot(kind: JobKind, now: datetime, calendar: MarketCalendar, last_run: datetime | None,
             config: ScheduleConfig = ScheduleConfig()) -> datetime | None:
    """The slot `kind` should run for now, or None when nothing is due.

    Args:
        kind: the job.
        now: the current time (timezone-aware).
        calendar: the exchange calendar.
        last_run: the slot the job last ran for (None: never).
        config: the timing.

    Returns:
        The latest slot at or before `now`, if it is later than `last_run` and within the kind's grace period.
    """
    slot = latest_slot(kind, now, calendar, config)
    if slot is None or (last_run is not None and last_run >= slot):
        return None
    if now - slot > config.grace(kind):
        return None
    return slot


def should_run(kind: JobKind, now: datetime, calendar: MarketCalendar, last_run: datetime | None,
               config: ScheduleConfig = ScheduleConfig()) -> bool:
    """Whether `kind` is due at `now`, given the slot it last ran for (see `due_slot`)."""
    return due_slot(kind, now, calendar, last_run, config) is not None


def due_jobs(now: datetime, calendar: MarketCalendar, last_runs: Mapping[str, datetime],
             config: ScheduleConfig = ScheduleConfig(), kinds: tuple[JobKind, ...] = JOB_KINDS,
             ) -> list[tuple[JobKind, datetime]]:
    """Every job of `kinds` due at `now`, with the slot it is due for, in the order of `kinds`."""
    out: list[tuple[JobKind, datetime]] = []
    for kind in kinds:
        slot = due_slot(kind, now, calendar, last_runs.get(kind), config)
        if slot is not None:
            out.append((kind, slot))
    return out
