"""The digest scheduler: APScheduler 3 (`AsyncIOScheduler`) in the bot's event loop.

Contract:
- One cron job per active schedule (job id = the schedule id, the trigger from
  `commands.digests.trigger_for`, in the schedule's own time zone; coalesced, with the missed-run
  grace as misfire grace time). A fire only enqueues a digest job; the worker runs it.
- A fire's job key is `commands.digests.job_key` of the *scheduled* fire time (the latest fire
  time of the trigger at or before now), never of now() itself, so every process computes the
  same key and the job queue turns N processes firing into one run.
- `start` loads the active schedules and fires, once, each run missed within the grace period
  (`commands.digests.missed_fire_time`); a run that already happened has its job, so enqueueing it
  again does nothing. A run missed by more than the grace is dropped.
- `refresh(schedule_id)` after every change (create, pause, resume, delete); `resync` (also every
  `resync_seconds`) reconciles with the database, so a schedule created or deleted through
  another process is picked up here too.
- `stop` lets every fire in progress (a digest's, `add_interval`'s or `add_daily`'s work)
  finish, within the time it is given: APScheduler's shutdown cancels the jobs it runs, but a
  fire runs in a task of its own that `stop` awaits (and cancels when that time is up).
- The clock is injected (`clock`): digest fires and `add_interval`'s ``now`` read it, never the
  wall clock, so tests fire runs at chosen moments without sleeping, and what they see never
  depends on when they run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.job import Job as SchedulerJob
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.digest_job import enqueue_digest
from commands.digests import (
    MISSED_RUN_GRACE,
    ScheduleView,
    active_schedules,
    fire_times,
    get_schedule,
    missed_fire_time,
    trigger_for,
)
from storage.jobs import Enqueued

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
T = TypeVar("T")
DEFAULT_RESYNC_SECONDS = 300.0
RESYNC_JOB_ID = "resync-schedules"


def utc_now() -> datetime:
    """The real clock (aware, UTC)."""
    return datetime.now(UTC)


def _cron_spec(schedule: ScheduleView) -> tuple[int, str, str]:
    return schedule.weekday, schedule.time_of_day, schedule.timezone


class ScheduleRegistry:
    """The active schedules as APScheduler cron jobs whose fires enqueue digest jobs."""

    def __init__(
        self,
        *,
        wake_worker: Callable[[], None] = lambda: None,
        clock: Clock = utc_now,
        grace: timedelta = MISSED_RUN_GRACE,
        resync_seconds: float | None = DEFAULT_RESYNC_SECONDS,
    ) -> None:
        self._wake_worker = wake_worker
        self._clock = clock
        self._grace = grace
        self._resync_seconds = resync_seconds
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._registered: dict[int, ScheduleView] = {}
        self._fires: set[asyncio.Future[Any]] = set()  # fires in progress: `stop` awaits them
        self._stopping = False

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> list[Enqueued]:
        """Register every active schedule, fire the runs missed within the grace period once,
        and start APScheduler. Returns what the missed runs enqueued."""
        missed: list[Enqueued] = []
        try:
            schedules = await active_schedules()
        except Exception:
            log.exception("cannot load the digest schedules; retrying at the next resync")
            schedules = []
        now = self._clock()
        for schedule in schedules:
            self._register(schedule)
            fire_time = missed_fire_time(schedule, now, self._grace)
            if fire_time is not None:
                enqueued = await self._fire_safely(schedule.id, fire_time)
                if enqueued is not None:
                    missed.append(enqueued)
        if self._resync_seconds:
            self._scheduler.add_job(
                self.resync,
                "interval",
                seconds=self._resync_seconds,
                id=RESYNC_JOB_ID,
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        self._scheduler.start()
        log.info(
            "digest scheduler started: %d schedules, %d missed runs queued",
            len(schedules),
            sum(1 for enqueued in missed if enqueued.created),
        )
        return missed

    async def stop(self, within: float | None = None) -> None:
        """Stop firing; let fires in progress finish, for at most ``within`` seconds (None: as
        long as they take); those still running then are cancelled."""
        self._stopping = True
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down in a loop callback
        if not self._fires:
            return
        _, late = await asyncio.wait(set(self._fires), timeout=within)
        for fire in late:
            fire.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)

    def add_daily(
        self, job_id: str, function: Callable[[], Awaitable[None]], *, hour: int, minute: int
    ) -> None:
        """Run ``function`` every day at ``hour:minute`` UTC (give or take five minutes, so
        that several processes do not all start at once); housekeeping such as the retention
        purge. Call before or after `start`. `scheduled_job(job_id)` is its APScheduler job."""

        async def fire() -> None:
            await self._to_the_end(function())

        self._scheduler.add_job(
            fire,
            "cron",
            hour=hour,
            minute=minute,
            jitter=300,
            id=job_id,
            name=job_id,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    def add_interval(
        self,
        job_id: str,
        function: Callable[[datetime], Awaitable[None]],
        *,
        minutes: int,
    ) -> None:
        """Run ``function(now)`` at start and every ``minutes``, ``now`` read from the clock;
        for periodic work such as the Procore sync, whose job is keyed by the period so that
        processes make one run. `scheduled_job(job_id)` is its APScheduler job."""

        async def fire() -> None:
            await self._to_the_end(function(self._clock()))

        self._scheduler.add_job(
            fire,
            "interval",
            minutes=minutes,
            next_run_time=datetime.now(UTC),
            id=job_id,
            name=job_id,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
        )

    # --- changes ---------------------------------------------------------------------------

    async def refresh(self, schedule_id: int) -> ScheduleView | None:
        """Bring one schedule's cron job in line with the database (after a create, pause,
        resume or delete); returns the schedule as registered, or None when it has no job."""
        schedule = await get_schedule(schedule_id)
        if schedule is None or schedule.paused:
            self._unregister(schedule_id)
            return None
        self._register(schedule)
        return schedule

    async def resync(self) -> None:
        """Reconcile every cron job with the active schedules in the database."""
        try:
            schedules = {schedule.id: schedule for schedule in await active_schedules()}
        except Exception:
            log.exception("cannot resync the digest schedules")
            return
        for schedule_id in set(self._registered) - set(schedules):
            self._unregister(schedule_id)
        for schedule in schedules.values():
            self._register(schedule)

    def _register(self, schedule: ScheduleView) -> None:
        known = self._registered.get(schedule.id)
        self._registered[schedule.id] = schedule
        if known is not None and _cron_spec(known) == _cron_spec(schedule):
            return  # unchanged: replacing the job would recompute its next run time
        self._scheduler.add_job(
            self._fire_due,
            trigger=trigger_for(schedule.weekday, schedule.time_of_day, schedule.timezone),
            args=[schedule.id],
            id=str(schedule.id),
            name=f"digest {schedule.id}",
            coalesce=True,
            misfire_grace_time=int(self._grace.total_seconds()),
            max_instances=1,
            replace_existing=True,
        )

    def _unregister(self, schedule_id: int) -> None:
        if self._registered.pop(schedule_id, None) is not None:
            self._scheduler.remove_job(str(schedule_id))

    # --- firing ----------------------------------------------------------------------------

    async def fire(self, schedule_id: int, fire_time: datetime, key: str | None = None) -> Enqueued:
        """Enqueue the run of ``schedule_id`` for ``fire_time`` (once per key; default the
        scheduled run's key) and wake the worker."""
        enqueued = await enqueue_digest(schedule_id, fire_time, key)
        if enqueued.created:
            log.info(
                "digest of schedule %s for %s queued as job %s",
                schedule_id,
                fire_time.isoformat(),
                enqueued.job.id,
            )
            self._wake_worker()
        return enqueued

    def due_fire_time(self, schedule_id: int) -> datetime | None:
        """The scheduled fire time a fire happening now belongs to: the trigger's latest fire
        time at or before the clock, within the grace period."""
        schedule = self._registered.get(schedule_id)
        if schedule is None:
            return None
        now = self._clock()
        times = fire_times(schedule, now - self._grace, now)
        return times[-1] if times else None

    async def _fire_due(self, schedule_id: int) -> Enqueued | None:
        """The cron job's function: enqueue the run of the fire time that is due (unless the
        schedule was paused or deleted meanwhile, e.g. through another process)."""
        try:
            if await self.refresh(schedule_id) is None:
                log.info("schedule %s is paused or gone: not fired", schedule_id)
                return None
        except Exception as error:  # the run's own planning checks again
            log.warning("cannot re-read schedule %s before firing: %s", schedule_id, error)
        fire_time = self.due_fire_time(schedule_id)
        if fire_time is None:
            log.warning("schedule %s fired with no fire time due; ignored", schedule_id)
            return None
        return await self._fire_safely(schedule_id, fire_time)

    async def _fire_safely(self, schedule_id: int, fire_time: datetime) -> Enqueued | None:
        """`fire`, errors logged; run to the end even when the scheduler stops meanwhile."""
        return await self._to_the_end(self._fire_logged(schedule_id, fire_time))

    async def _to_the_end(self, work: Awaitable[T]) -> T | None:
        """Await ``work`` in a task of its own that `stop` awaits: APScheduler's shutdown cancels
        the job awaiting it (then None, nothing logged: the work goes on), never the work."""
        task = asyncio.ensure_future(work)
        self._fires.add(task)
        task.add_done_callback(self._fires.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            return None  # the scheduler's shutdown: `stop` awaits the task itself

    async def _fire_logged(self, schedule_id: int, fire_time: datetime) -> Enqueued | None:
        try:
            return await self.fire(schedule_id, fire_time)
        except Exception:
            log.exception("cannot queue the digest of schedule %s", schedule_id)
            return None

    # --- reading ---------------------------------------------------------------------------

    @property
    def schedule_ids(self) -> list[int]:
        """The schedules with a cron job, in id order."""
        return sorted(self._registered)

    def cron_job(self, schedule_id: int) -> SchedulerJob | None:
        """The APScheduler job of a schedule, if registered."""
        return self._scheduler.get_job(str(schedule_id))

    def scheduled_job(self, job_id: str) -> SchedulerJob | None:
        """The APScheduler job added as ``job_id`` by `add_interval` or `add_daily`, if any
        (awaiting its ``func()`` runs it as APScheduler would, at the clock's time)."""
        return self._scheduler.get_job(job_id)

    def next_fire_time(self, schedule_id: int, after: datetime | None = None) -> datetime | None:
        """The next fire time of a registered schedule after ``after`` (default: the clock)."""
        upcoming = self.upcoming(schedule_id, after or self._clock(), 1)
        return upcoming[0] if upcoming else None

    def upcoming(self, schedule_id: int, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times of the registered cron trigger, strictly after ``after``
        (aware datetimes in the schedule's time zone)."""
        job = self.cron_job(schedule_id)
        if job is None:
            return []
        times: list[datetime] = []
        previous: datetime | None = None
        cursor = after + timedelta(microseconds=1)
        while len(times) < count:
            moment = job.trigger.get_next_fire_time(previous, cursor)
            if moment is None:
                break
            times.append(moment)
            previous, cursor = moment, moment + timedelta(seconds=1)
        return times
