"""The job worker: claims jobs (compile jobs and digests), runs them, and reports in Slack.

Every job kind goes through one pipeline. First the job's kind turns it into its work
(`bot.job_work`: a compile job holds its request; a digest plans its run now, as its owner, and
records the plan). Work that is a notice (an empty week, an owner who lost access) posts one
message, recorded as the parent message; work that is a skip only ends the job. Compile work
runs these steps, in order, each recorded on the job right after it happened so that a resumed
job (lease expired, or released at shutdown) skips what was done and never posts twice:

1. post the parent message where asked (or by DM, saying why) → ``parent_ts``
2. compile (`commands.compile_backups.compile_backup`, CPU work in the process pool), the parent
   message following the progress → ``result`` (+ ``pdf_path``)
3. upload the PDF into the parent's thread with ``files_upload_v2`` → ``file_id``
4. reply in the thread: success, or the missing-billing-period warning → ``final_reply_ts``

A failure ends in a thread message saying what to do and the job marked failed; the worker
carries on. At most ``concurrency`` compiles run at once; more jobs may be claimed and wait
(their parent message says "Queued").

Several processes share the queue. A job is held under a lease renewed every third of
``lease_seconds``, and renewed again right before each Slack side effect, so a worker that lost
its job (another one took it over after its lease expired) stops before posting. A database
failure under a running job pauses it: the worker waits until the database answers, reloads the
job and carries on from its last recorded step (a step already done in Slack is recorded as soon
as the database is back, never done again). Only when the database keeps failing while it answers
for longer than ``database_patience`` does the job fail with the "database unavailable" message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import math
import os
import re
import socket
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Protocol, TypeVar

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup_job import BackupJobPayload
from bot.blocks.digests import notice_message
from bot.blocks.messages import (
    Failure,
    JobHeadline,
    Message,
    Phase,
    digest_fallback_note,
    failure_reply,
    fallback_note,
    outcome_phase,
    outcome_reply,
    parent_message,
)
from bot.delivery import Posted, open_dm, post_with_dm_fallback
from bot.digest_job import plan_digest_job
from bot.errors import is_database_error
from bot.job_work import CompileWork, JobPlanner, JobWork, NoticeWork, plan_compile_job
from bot.parent import ParentMessage
from bot.pool import end_process_pool, new_process_pool
from commands.access import AccessDenied, Requester
from commands.compile_backups import CompileResult, ProgressCallback, compile_backup
from storage import jobs
from storage.jobs import COMPILE_BACKUP, DIGEST, Job, JobStatus, LeaseLost

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 60.0
DEFAULT_POLL_SECONDS = 2.0
DEFAULT_DATABASE_PATIENCE_SECONDS = 60.0
DATABASE_RETRY_SECONDS = (0.2, 2.0)  # first and longest wait between database retries
JOB_PLANNERS: dict[str, JobPlanner] = {COMPILE_BACKUP: plan_compile_job, DIGEST: plan_digest_job}


class CompileFunction(Protocol):
    """The signature of `compile_backup` (tests and benchmarks may pass another)."""

    def __call__(
        self,
        requester: Requester,
        project_id: int,
        invoice_ids: list[int],
        *,
        timezone: str = "UTC",
        executor: concurrent.futures.Executor | None = None,
        progress: ProgressCallback | None = None,
    ) -> Awaitable[CompileResult]: ...


class UploadRefused(Exception):
    """Slack did not take the PDF; ``str(exc)`` is the short reason."""


def _upload_refusal(error: SlackApiError | SlackRequestError) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack said {error.response.get('error')}"
    status = re.search(r"status: (\d+)", str(error))
    return f"HTTP {status.group(1)}" if status else "the upload did not go through"


class JobWorker:
    """Claims and runs jobs of the kinds in `planners` in the current event loop until `stop`."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        concurrency: int,
        executor_factory: Callable[[], concurrent.futures.Executor] | None = None,
        compile_function: CompileFunction = compile_backup,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
        max_in_flight: int | None = None,
        progress_interval: float = 1.0,
        planners: dict[str, JobPlanner] | None = None,
        database_patience: float = DEFAULT_DATABASE_PATIENCE_SECONDS,
    ) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._client = client
        self._executor_factory = executor_factory or (lambda: new_process_pool(concurrency))
        self._executor: concurrent.futures.Executor | None = None
        self._compile = compile_function
        self._compile_slots = asyncio.Semaphore(concurrency)
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._max_in_flight = max_in_flight or max(8, concurrency * 4)
        self._progress_interval = progress_interval
        self._planners = dict(JOB_PLANNERS if planners is None else planners)
        self._database_patience = database_patience
        self._wake = asyncio.Event()
        self._stopping = False
        self._stop_now = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running_jobs(self) -> int:
        """Jobs this worker holds right now (compiling or waiting for a compile slot)."""
        return len(self._tasks)

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The process pool, made on first use (and again if a worker process died)."""
        if self._executor is None:
            self._executor = self._executor_factory()
        return self._executor

    def wake(self) -> None:
        """Look for new jobs now (called right after a listener enqueued one)."""
        self._wake.set()

    def start(self) -> None:
        """Start claiming jobs in the background."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._claim_loop(), name="job-worker")

    def stop_now(self) -> None:
        """End the grace period of `stop` at once (a second stop signal)."""
        self._stop_now.set()

    async def stop(self, grace_seconds: float) -> None:
        """Stop claiming; give running jobs ``grace_seconds`` (cut short by `stop_now`) to
        finish, then interrupt them and end the process pool: an interrupted job goes back to
        the queue at its last recorded step and resumes later."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        pending = await self._wait_for_jobs(grace_seconds)
        for task in pending:
            task.cancel()
        if self._executor is not None:  # ends the compiles the cancelled jobs wait for
            executor, self._executor = self._executor, None
            await asyncio.to_thread(end_process_pool, executor)
        await asyncio.gather(*pending, return_exceptions=True)

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
                        self.owner, self._lease_seconds, kinds=tuple(self._planners)
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
        renewer = asyncio.create_task(self._renew_lease(job, runner))
        try:
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

    async def _renew_lease(self, job: Job, runner: asyncio.Task[None] | None) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            try:
                await jobs.renew_lease(job, self.owner, self._lease_seconds)
            except LeaseLost:
                log.warning("lost the lease of job %s; stopping it", job.id)
                if runner is not None:
                    runner.cancel()
                return
            except Exception as error:
                log.warning("cannot renew the lease of job %s: %s", job.id, error)

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
                log.warning("job %s paused: database error (%s)", job.id, outage)
                if give_up_at == math.inf:
                    give_up_at = loop.time() + self._database_patience
            paused_at = loop.time()
            reloaded = await self._when_database_answers(lambda: jobs.get_job(job_id))
            give_up_at += max(0.0, loop.time() - paused_at - DATABASE_RETRY_SECONDS[0] * 2)
            if reloaded is None or not _held_by(reloaded, self.owner):
                log.warning("job %s was taken over while the database failed", job.id)
                return
            log.info("job %s resumes: the database answers again", job.id)
            job = reloaded

    async def _when_database_answers(self, query: Callable[[], Awaitable[T]]) -> T:
        """``query()``, retried (waiting longer each time) until the database answers."""
        delay, longest = DATABASE_RETRY_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                return await query()
            except Exception as error:
                if not is_database_error(error):
                    raise
            delay = min(delay * 2, longest)

    async def _recorded(self, record: Callable[[], Awaitable[None]]) -> None:
        """Record a step already done in Slack; through a database failure, retry until it is
        recorded (or `LeaseLost`), so that the step is never done twice."""
        try:
            await record()
        except LeaseLost:
            raise
        except Exception as error:
            if not is_database_error(error):
                raise
            log.warning("cannot record a job step (will retry): %s", error)
            await self._when_database_answers(record)

    async def _fence(self, job: Job) -> None:
        """Before a Slack side effect: make sure this worker still holds ``job``, for a whole
        lease from now (`LeaseLost` otherwise)."""
        await jobs.renew_lease(job, self.owner, self._lease_seconds)

    async def _run(self, job: Job, *, last_try: bool = True) -> None:
        """Run ``job`` to its end. A database error fails it only on the ``last_try``; before
        that it raises `_DatabaseOutage` (the job is paused and resumed)."""
        work: JobWork | None = None
        try:
            work = await self._planners[job.kind](job, self.owner)
            if job.attempts > MAX_ATTEMPTS:
                raise _GaveUp(job.attempts - 1)
            if isinstance(work, CompileWork):
                await self._steps(job, work.request)
            elif isinstance(work, NoticeWork):
                await self._notice(job, work)
            else:
                await jobs.finish(job, self.owner, JobStatus.SUCCEEDED, work.note)
        except LeaseLost:
            log.warning("job %s was taken over by another worker", job.id)
        except asyncio.CancelledError:
            raise
        except _GaveUp as error:
            await self._fail(job, work, Failure.GAVE_UP, str(error.attempts))
        except AccessDenied as error:
            await self._fail(job, work, Failure.ACCESS_DENIED, str(error))
        except UploadRefused as error:
            log.warning("job %s: upload refused: %s", job.id, error)
            await self._fail(job, work, Failure.UPLOAD_REFUSED, str(error))
        except Exception as error:
            if is_database_error(error):
                if not last_try:
                    raise _DatabaseOutage(str(error)) from error
                log.error("job %s: database error: %s", job.id, error)
                await self._fail(job, work, Failure.DATABASE, str(error))
            else:
                log.exception("job %s failed unexpectedly", job.id)
                await self._fail(job, work, Failure.UNEXPECTED, repr(error))

    async def _notice(self, job: Job, work: NoticeWork) -> None:
        """Post the notice once (in its channel, else by DM; or straight by DM), then end."""
        if job.parent_ts is None:
            await self._fence(job)
            if work.channel_id:
                posted = await post_with_dm_fallback(
                    self._client,
                    work.channel_id,
                    work.user_id or "",
                    lambda note: notice_message(work.text, note),
                )
            else:
                assert work.user_id, "a notice without a channel goes to a user"
                notice = notice_message(work.text, resume_schedule_id=work.resume_schedule_id)
                posted = await self._direct_message(work.user_id, notice)
            await self._recorded(
                lambda: jobs.record_parent_message(
                    job, self.owner, posted.channel, posted.ts, posted.note
                )
            )
        await jobs.finish(job, self.owner, JobStatus.SUCCEEDED, work.note[:2000])

    async def _direct_message(self, user_id: str, message: Message) -> Posted:
        dm = await open_dm(self._client, user_id)
        response = await self._client.chat_postMessage(channel=dm, **message.as_kwargs())
        return Posted(dm, str(response["ts"]))

    async def _steps(self, job: Job, request: BackupJobPayload) -> None:
        headline = request.headline
        if job.parent_ts is None:
            await self._fence(job)
            posted = await post_with_dm_fallback(
                self._client,
                request.channel_id,
                request.user_id,
                lambda note: parent_message(headline, Phase.QUEUED, note=note),
                digest_fallback_note if request.title else fallback_note,
            )
            await self._recorded(
                lambda: jobs.record_parent_message(
                    job, self.owner, posted.channel, posted.ts, posted.note
                )
            )
        parent = self._parent(job, headline)
        try:
            outcome = await self._compiled(job, request, parent)
            if outcome.has_file and job.file_id is None:
                await parent.show(Phase.UPLOADING)
                await self._fence(job)
                file_id = await self._upload(job, outcome)
                await self._recorded(lambda: jobs.record_upload(job, self.owner, file_id))
            if job.final_reply_ts is None:
                await self._fence(job)
                mention = None if request.title else request.user_id
                ts = await self._reply(job, outcome_reply(outcome, mention))
                await self._recorded(lambda: jobs.record_final_reply(job, self.owner, ts))
            await parent.finish(outcome_phase(outcome), outcome.invoice_count)
        finally:
            await parent.close()
        await jobs.finish(job, self.owner, JobStatus.SUCCEEDED)

    def _parent(self, job: Job, headline: JobHeadline) -> ParentMessage:
        assert job.parent_channel is not None and job.parent_ts is not None
        return ParentMessage(
            self._client,
            job.parent_channel,
            job.parent_ts,
            headline,
            job.delivery_note,
            min_interval=self._progress_interval,
        )

    async def _compiled(
        self, job: Job, request: BackupJobPayload, parent: ParentMessage
    ) -> CompileResult:
        """The outcome recorded on the job, or compile now (also when its PDF went missing)."""
        if job.result is not None:
            outcome = CompileResult.from_json(job.result)
            pdf_gone = outcome.has_file and job.file_id is None and not _exists(job.pdf_path)
            if not pdf_gone:
                return outcome
        async with self._compile_slots:
            await parent.show(Phase.RUNNING)
            result = await self._compile_in_pool(request, parent.progress)
        pdf_path = str(result.pdf_path) if result.pdf_path is not None else None
        await jobs.record_compiled(job, self.owner, pdf_path, result.to_json())
        return result

    async def _compile_in_pool(
        self, request: BackupJobPayload, progress: ProgressCallback
    ) -> CompileResult:
        try:
            return await self._compile(
                request.requester,
                request.project_id,
                list(request.invoice_ids),
                timezone=request.timezone,
                executor=self.executor,
                progress=progress,
            )
        except BrokenProcessPool:
            log.error("a PDF worker process died; starting a new pool")
            broken, self._executor = self._executor, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise

    async def _upload(self, job: Job, outcome: CompileResult) -> str:
        # files_upload_v2 would read a path synchronously, on the event loop; read it aside.
        content = await asyncio.to_thread(Path(str(job.pdf_path)).read_bytes)
        try:
            response = await self._client.files_upload_v2(
                channel=job.parent_channel,
                thread_ts=job.parent_ts,
                file=content,
                filename=outcome.file_name,
                title=outcome.file_name,
            )
        except (SlackApiError, SlackRequestError) as error:
            raise UploadRefused(_upload_refusal(error)) from error
        return str(response["file"]["id"])

    async def _reply(self, job: Job, message: Message) -> str:
        response = await self._client.chat_postMessage(
            channel=job.parent_channel, thread_ts=job.parent_ts, **message.as_kwargs()
        )
        return str(response["ts"])

    async def _fail(self, job: Job, work: JobWork | None, failure: Failure, detail: str) -> None:
        """Tell the user (in the parent's thread, else by DM), mark the parent and the job
        failed. Each part is best effort: a failure here is logged, never raised."""
        message = failure_reply(failure, job.id, detail)
        request = work.request if isinstance(work, CompileWork) else None
        notice_user = work.user_id if isinstance(work, NoticeWork) else None
        user_id = request.user_id if request else notice_user
        in_thread = request is not None and job.parent_ts is not None
        try:
            if job.final_reply_ts is None and (in_thread or user_id):
                if in_thread:
                    ts = await self._reply(job, message)
                else:
                    ts = (await self._direct_message(str(user_id), message)).ts
                with contextlib.suppress(Exception):
                    await jobs.record_final_reply(job, self.owner, ts)
            if request is not None and job.parent_ts is not None:
                await self._parent(job, request.headline).show(Phase.FAILED)
        except Exception:
            log.exception("job %s: could not tell the user about the failure", job.id)
        try:
            await jobs.finish(job, self.owner, JobStatus.FAILED, f"{failure}: {detail}"[:2000])
        except Exception:
            log.exception("job %s: could not mark the job failed", job.id)


class _DatabaseOutage(Exception):
    """The database failed under a running job; the job pauses until it answers again."""


def _held_by(job: Job, owner: str) -> bool:
    return job.status == JobStatus.RUNNING and job.lease_owner == owner


class _GaveUp(Exception):
    def __init__(self, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempts")
        self.attempts = attempts


def _exists(path: str | None) -> bool:
    return path is not None and Path(path).is_file()
