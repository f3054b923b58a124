"""The job worker: claims jobs of every registered kind (`bot.job_kinds.JobKinds`) and runs each
with its kind's handler.

The worker owns what every kind shares. A job is held under a lease renewed every third of
``lease_seconds`` (and by the handler's `JobRun.fence` before each side effect), so a worker that
lost its job (another one took it over) stops before doing anything twice. A run longer than
``MAX_ATTEMPTS`` claims gives up and fails.

Pick-up: an idle worker waits for a wake-up, at most ``poll_seconds``. A job queued in this process
wakes it at once (`storage.jobs.on_enqueue`); on PostgreSQL, one queued by any process wakes it
by ``NOTIFY`` (`storage.job_presence.WorkerPresence`, which also holds the advisory lock that
tells other workers this one is alive: when this process dies, they take its running jobs over
at once rather than when its lease expires).

A database failure under a running job pauses it: the worker waits until the database answers,
reloads the job and carries on from its last recorded step (a step already done outside is
recorded as soon as the database is back, never done again). Only when the database keeps
failing while it answers for longer than ``database_patience`` does the job fail with the
"database unavailable" message. The object store is treated alike: when it does not answer
(`storage.blobs.StoreUnavailable`) the job pauses until it answers again (``store.ping``), then
carries on from its last recorded step; a store that refuses (credentials, permissions) fails the
job with the "file store" message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import uuid
from typing import Any

from bot import logs
from bot.blocks.messages import Failure
from bot.errors import is_database_error, is_store_outage
from bot.job_kinds import (
    DATABASE_RETRY_SECONDS,
    JobFailure,
    JobHandler,
    JobKinds,
    JobRun,
    when_database_answers,
)
from commands.access import AccessDenied
from storage import jobs
from storage.blobs import BlobStore, StoreRefused
from storage.job_presence import WorkerPresence
from storage.jobs import Job, JobStatus, LeaseLost

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 2.0
DEFAULT_DATABASE_PATIENCE_SECONDS = 60.0
DEFAULT_MAX_IN_FLIGHT = 8


class JobWorker:
    """Claims and runs jobs of the kinds in ``kinds`` in the current event loop until `stop`."""

    def __init__(
        self,
        kinds: JobKinds,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        database_patience: float = DEFAULT_DATABASE_PATIENCE_SECONDS,
        store: BlobStore | None = None,
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.kinds = kinds
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._max_in_flight = max_in_flight
        self._database_patience = database_patience
        self._store = store  # pinged while a job waits for the object store to answer
        self._wake = asyncio.Event()
        self._presence = WorkerPresence(self.owner, self.wake)
        self._unsubscribe: Any = None
        self._stopping = False
        self._stop_now = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running_jobs(self) -> int:
        """Jobs this worker holds right now (running or waiting for a slot)."""
        return len(self._tasks)

    def wake(self) -> None:
        """Look for new jobs now."""
        self._wake.set()

    async def start(self) -> None:
        """Start claiming jobs in the background (on PostgreSQL, once its presence is set up)."""
        if self._loop_task is None:
            self._unsubscribe = jobs.on_enqueue(lambda kind: self.wake())
            await self._presence.start()
            self._loop_task = asyncio.create_task(self._claim_loop(), name="job-worker")

    def stop_now(self) -> None:
        """End the grace period of `stop` at once (a second stop signal)."""
        self._stop_now.set()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; give running jobs ``grace_seconds`` (cut short by `stop_now`) to
        finish, then interrupt them and close the handlers (which ends the process pool the
        interrupted jobs wait for): an interrupted job goes back to the queue at its last
        recorded step and resumes later."""
        self._stopping = True
        self._wake.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._loop_task is not None:
            await self._loop_task
        pending = await self._wait_for_jobs(grace_seconds)
        for task in pending:
            task.cancel()
        await self.kinds.close()  # ends the compiles the cancelled jobs wait for
        await asyncio.gather(*pending, return_exceptions=True)
        await self._presence.close()

    async def _wait_for_jobs(self, grace_seconds: float) -> set[asyncio.Task[None]]:
        """Wait until the running jobs end, ``grace_seconds`` pass or `stop_now`; return the
        jobs still running."""
        if not self._tasks or self._stop_now.is_set():
            return set(self._tasks)
        all_done = asyncio.ensure_future(asyncio.wait(set(self._tasks)))
        stop_now = asyncio.ensure_future(self._stop_now.wait())
        await asyncio.wait(
            {all_done, stop_now}, timeout=grace_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in (all_done, stop_now):
            waiter.cancel()
        await asyncio.gather(all_done, stop_now, return_exceptions=True)
        return {task for task in self._tasks if not task.done()}

    async def _claim_loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            while len(self._tasks) < self._max_in_flight and not self._stopping:
                try:
                    job = await jobs.claim_next(
                        self.owner,
                        self._lease_seconds,
                        kinds=self.kinds.kinds,
                        exclusive=self.kinds.one_at_a_time,
                        owner_lock=self._presence.lock_key,
                        take_over_dead=self._presence.takes_over,
                    )
                except Exception as error:
                    log.warning("cannot claim jobs (will retry): %s", error)
                    break
                if job is None:
                    break
                task = asyncio.create_task(self._hold(job), name=f"job-{job.id}")
                self._tasks.add(task)
                task.add_done_callback(self._job_done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_seconds)

    def _job_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def _hold(self, job: Job) -> None:
        """Run ``job`` while renewing its lease; release it if interrupted."""
        runner = asyncio.current_task()
        renewer = asyncio.create_task(keep_lease(job, self.owner, self._lease_seconds, runner))
        try:
            with logs.bind(job_id=job.id, slack_user=_slack_user_of(job)):
                await self._run_through_outages(job)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            with contextlib.suppress(Exception):
                released = await jobs.release(job, self.owner)
                log.info("job %s interrupted by shutdown; released=%s", job.id, released)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _run_through_outages(self, job: Job) -> None:
        """Run ``job``; when the database fails under it, wait until it answers, reload the job
        and carry on from its last recorded step, while this worker still holds it. The
        ``database_patience`` counts the time the job keeps failing while the database answers,
        not the time the database is down."""
        loop = asyncio.get_running_loop()
        job_id = job.id
        give_up_at = math.inf
        while True:
            last_try = loop.time() >= give_up_at
            try:
                await self._run(job, last_try=last_try)
                return
            except _DatabaseOutage as outage:
                log.warning("job %s paused: %s", job.id, outage)
                if give_up_at == math.inf:
                    give_up_at = loop.time() + self._database_patience
                if outage.store and self._store is not None:
                    paused_at = loop.time()
                    await when_database_answers(self._store.ping, also=is_store_outage)
                    give_up_at += loop.time() - paused_at
            paused_at = loop.time()
            reloaded = await when_database_answers(lambda: jobs.get_job(job_id))
            give_up_at += max(0.0, loop.time() - paused_at - DATABASE_RETRY_SECONDS[0] * 2)
            if reloaded is None or not _held_by(reloaded, self.owner):
                log.warning("job %s was taken over while the database failed", job.id)
                return
            log.info("job %s resumes: the database and the store answer again", job.id)
            job = reloaded

    async def _run(self, job: Job, *, last_try: bool = True) -> None:
        """Run ``job`` to its end with its kind's handler. A database error fails it only on the
        ``last_try``; before that it raises `_DatabaseOutage` (the job is paused and resumed).
        So does an object store that does not answer."""
        handler = self.kinds.handler(job.kind)
        run = JobRun(job, self.owner, self._lease_seconds)
        work: Any = None
        try:
            work = await handler.plan(run)
            if job.attempts > MAX_ATTEMPTS:
                raise _GaveUp(job.attempts - 1)
            note = await handler.run(run, work)
            await jobs.finish(job, self.owner, JobStatus.SUCCEEDED, note)
        except LeaseLost:
            log.warning("job %s was taken over by another worker", job.id)
        except asyncio.CancelledError:
            raise
        except _GaveUp as error:
            await self._fail(handler, run, work, Failure.GAVE_UP, str(error.attempts))
        except AccessDenied as error:
            await self._fail(handler, run, work, Failure.ACCESS_DENIED, str(error))
        except JobFailure as error:
            log.warning("job %s: %s: %s", job.id, error.failure, error.detail)
            await self._fail(handler, run, work, error.failure, error.detail)
        except StoreRefused as error:
            log.error("job %s: the object store refused: %s", job.id, error)
            await self._fail(handler, run, work, Failure.STORE, str(error))
        except Exception as error:
            if is_store_outage(error):
                if not last_try:
                    raise _DatabaseOutage(f"object store error ({error})", store=True) from error
                log.error("job %s: object store error: %s", job.id, error)
                await self._fail(handler, run, work, Failure.STORE, str(error))
            elif is_database_error(error):
                if not last_try:
                    raise _DatabaseOutage(f"database error ({error})") from error
                log.error("job %s: database error: %s", job.id, error)
                await self._fail(handler, run, work, Failure.DATABASE, str(error))
            else:
                log.exception("job %s failed unexpectedly", job.id)
                await self._fail(handler, run, work, Failure.UNEXPECTED, repr(error))

    async def _fail(
        self, handler: JobHandler[Any], run: JobRun, work: Any, failure: Failure, detail: str
    ) -> None:
        """Let the handler tell whoever should know, then mark the job failed. Each part is
        best effort: a failure here is logged, never raised."""
        try:
            await handler.failed(run, work, failure, detail)
        except Exception:
            log.exception("job %s: could not report the failure", run.job.id)
        try:
            await jobs.finish(run.job, self.owner, JobStatus.FAILED, f"{failure}: {detail}"[:2000])
        except Exception:
            log.exception("job %s: could not mark the job failed", run.job.id)


async def keep_lease(
    job: Job, owner: str, lease_seconds: float, runner: asyncio.Future[Any] | None
) -> None:
    """Renew ``job``'s lease for ``owner`` every third of ``lease_seconds`` until cancelled.
    Returns only when the lease was lost (another process took the job over), after cancelling
    ``runner``, the work done under it. A renewal that fails otherwise (a database hiccup) is
    logged; the lease has two more chances."""
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            await jobs.renew_lease(job, owner, lease_seconds)
        except LeaseLost:
            log.warning("lost the lease of job %s; stopping it", job.id)
            if runner is not None:
                runner.cancel()
            return
        except Exception as error:
            log.warning("cannot renew the lease of job %s: %s", job.id, error)


class _DatabaseOutage(Exception):
    """The database (or, with ``store``, the object store) failed under a running job; the job
    pauses until it answers again."""

    def __init__(self, message: str, *, store: bool = False) -> None:
        super().__init__(message)
        self.store = store


def _slack_user_of(job: Job) -> str | None:
    """The Slack user a job works for (its payload's ``user_id``), for the log context."""
    user = (job.payload or {}).get("user_id") if isinstance(job.payload, dict) else None
    return str(user) if user else None


def _held_by(job: Job, owner: str) -> bool:
    return job.status == JobStatus.RUNNING and job.lease_owner == owner


class _GaveUp(Exception):
    def __init__(self, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts = attempts
