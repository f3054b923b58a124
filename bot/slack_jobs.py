"""The job kinds that post in Slack (compile_backup, digest): one handler pipeline, a planner each.

First the job's planner turns it into its work (`bot.job_work`: a compile job holds its request; a
digest plans its run now, as its owner, and records the plan). Work that is a notice (an empty
week, an owner who lost access) posts one message, recorded as the parent message; work that is a
skip only ends the job. Compile work runs these steps, in order, each recorded in the job's
`storage.slack_deliveries.SlackDelivery` right after it happened, so that a resumed job (taken
over, or released at shutdown) skips what was done and never posts twice:

1. post the parent message where asked (or by DM, saying why) → ``parent_ts``
2. compile (`commands.compile_backups.compile_backup`, CPU work in the process pool), the parent
   message following the progress → ``result`` (+ ``pdf_path``: the PDF's key in the object store)
3. upload the PDF into the parent's thread, streamed from the object store (the compile put it
   there, so any process can deliver it) → ``file_id``
4. reply in the thread: success, or the missing-billing-period warning → ``final_reply_ts``

Each Slack side effect is preceded by `JobRun.fence`. A failure ends in a thread message saying
what to do (or a DM). At most ``concurrency`` compiles run at once; more jobs may be claimed and
wait (their parent message says "Queued").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.backup_job import BackupJobPayload
from bot.blocks.common import Message
from bot.blocks.digests import notice_message
from bot.blocks.messages import (
    Failure,
    JobHeadline,
    Phase,
    digest_fallback_note,
    failure_reply,
    fallback_note,
    outcome_phase,
    outcome_reply,
    parent_message,
)
from bot.delivery import (
    Posted,
    UploadFailed,
    exactly_once,
    file_in_thread,
    open_dm,
    post_once,
    post_with_dm_fallback,
    upload_to_thread,
)
from bot.digest_job import plan_digest_job
from bot.job_kinds import JobFailure, JobHandler, JobKinds, JobRun
from bot.job_work import CompileWork, JobPlanner, JobWork, NoticeWork, plan_compile_job
from bot.metrics import COMPILE_BYTES, COMPILE_SECONDS
from bot.parent import ParentMessage
from bot.pool import end_process_pool, new_process_pool
from commands.access import Requester
from commands.compile_backups import CompileResult, ProgressCallback, compile_backup
from commands.freshness import InvoiceFreshness
from storage import slack_deliveries
from storage.blobs import BlobMissing, BlobStore
from storage.jobs import COMPILE_BACKUP, DIGEST
from storage.slack_deliveries import SlackDelivery

log = logging.getLogger(__name__)


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
        freshness: InvoiceFreshness | None = None,
        blobs: BlobStore,
    ) -> Awaitable[CompileResult]: ...


class UploadRefused(JobFailure):
    """Slack did not take the PDF; ``detail`` is the short reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(Failure.UPLOAD_REFUSED, reason)


def _upload_refusal(error: SlackApiError | SlackRequestError) -> str:
    if isinstance(error, SlackApiError):
        return f"Slack said {error.response.get('error')}"
    status = re.search(r"status: (\d+)", str(error))
    return f"HTTP {status.group(1)}" if status else "the upload did not go through"


class SlackDeliveries:
    """What every Slack-posting job shares: the Slack client, the object store, the PDF
    process pool and its compile slots."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        blob_store: BlobStore,
        concurrency: int,
        executor_factory: Callable[[], concurrent.futures.Executor] | None = None,
        compile_function: CompileFunction = compile_backup,
        progress_interval: float = 1.0,
        freshness: InvoiceFreshness | None = None,
    ) -> None:
        self.client = client
        self.store = blob_store
        self._freshness = freshness  # re-read the invoices from their source before compiling
        self._executor_factory = executor_factory or (lambda: new_process_pool(concurrency))
        self._executor: concurrent.futures.Executor | None = None
        self._compile = compile_function
        self._compile_slots = asyncio.Semaphore(concurrency)
        self._progress_interval = progress_interval

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The process pool, made on first use (and again if a worker process died)."""
        if self._executor is None:
            self._executor = self._executor_factory()
        return self._executor

    async def close(self) -> None:
        """Shut the process pool down (idempotent)."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(end_process_pool, executor)

    async def notice(self, run: JobRun, work: NoticeWork) -> str:
        """Post the notice once (in its channel, else by DM; or straight by DM), then end."""
        delivery = await slack_deliveries.delivery_of(run.job)
        if delivery.parent_ts is None:
            await run.fence()
            if work.channel_id:
                posted = await post_with_dm_fallback(
                    self.client,
                    work.channel_id,
                    work.user_id or "",
                    lambda note: notice_message(work.text, note),
                    key=_key(run, "parent"),
                )
            else:
                assert work.user_id, "a notice without a channel goes to a user"
                notice = notice_message(work.text, resume_schedule_id=work.resume_schedule_id)
                posted = await self._direct_message(work.user_id, notice, _key(run, "parent"))
            await run.recorded(
                lambda: slack_deliveries.record_parent_message(
                    run.job, run.owner, delivery, posted.channel, posted.ts, posted.note
                )
            )
        return work.note[:2000]

    async def _direct_message(self, user_id: str, message: Message, key: str) -> Posted:
        dm = await open_dm(self.client, user_id)
        channel, ts = await post_once(self.client, dm, message, key)
        return Posted(channel, ts)

    async def compile_steps(self, run: JobRun, request: BackupJobPayload) -> None:
        """The four steps of a compile, each skipped when already recorded."""
        job, owner = run.job, run.owner
        delivery = await slack_deliveries.delivery_of(job)
        headline = request.headline
        if delivery.parent_ts is None:
            await run.fence()
            posted = await post_with_dm_fallback(
                self.client,
                request.channel_id,
                request.user_id,
                lambda note: parent_message(headline, Phase.QUEUED, note=note),
                key=_key(run, "parent"),
                explain=digest_fallback_note if request.title else fallback_note,
            )
            await run.recorded(
                lambda: slack_deliveries.record_parent_message(
                    job, owner, delivery, posted.channel, posted.ts, posted.note
                )
            )
        parent = self._parent(delivery, headline)
        try:
            outcome = await self._compiled(run, delivery, request, parent)
            if outcome.has_file and delivery.file_id is None:
                await parent.show(Phase.UPLOADING)
                await run.fence()
                file_id = await self._upload(run, delivery, outcome)
                await run.recorded(
                    lambda: slack_deliveries.record_upload(job, owner, delivery, file_id)
                )
            if delivery.final_reply_ts is None:
                await run.fence()
                mention = None if request.title else request.user_id
                ts = await self._reply(run, delivery, outcome_reply(outcome, mention))
                await run.recorded(
                    lambda: slack_deliveries.record_final_reply(job, owner, delivery, ts)
                )
            await parent.finish(outcome_phase(outcome), outcome.invoice_count)
        finally:
            await parent.close()

    def _parent(self, delivery: SlackDelivery, headline: JobHeadline) -> ParentMessage:
        assert delivery.parent_channel is not None and delivery.parent_ts is not None
        return ParentMessage(
            self.client,
            delivery.parent_channel,
            delivery.parent_ts,
            headline,
            delivery.delivery_note,
            min_interval=self._progress_interval,
        )

    async def _compiled(
        self,
        run: JobRun,
        delivery: SlackDelivery,
        request: BackupJobPayload,
        parent: ParentMessage,
    ) -> CompileResult:
        """The outcome recorded on the job, or compile now (also when its PDF went missing)."""
        if delivery.result is not None:
            outcome = CompileResult.from_json(delivery.result)
            gone = outcome.has_file and delivery.file_id is None and not await self._stored(outcome)
            if not gone:
                return outcome
        async with self._compile_slots:
            await parent.show(Phase.RUNNING)
            result = await self._compile_in_pool(request, parent.progress)
        await slack_deliveries.record_compiled(
            run.job, run.owner, delivery, result.file_key, result.to_json()
        )
        return result

    async def _stored(self, outcome: CompileResult) -> bool:
        """True when the outcome's PDF is in the object store (to be delivered)."""
        return (
            outcome.file_key is not None
            and await self.store.object_size(outcome.file_key) is not None
        )

    async def _compile_in_pool(
        self, request: BackupJobPayload, progress: ProgressCallback
    ) -> CompileResult:
        started = asyncio.get_running_loop().time()
        try:
            result = await self._compile(
                request.requester,
                request.project_id,
                list(request.invoice_ids),
                timezone=request.timezone,
                executor=self.executor,
                progress=progress,
                blobs=self.store,
                **({"freshness": self._freshness} if self._freshness is not None else {}),
            )
        except BrokenProcessPool:
            log.error("a PDF worker process died; starting a new pool")
            broken, self._executor = self._executor, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise
        COMPILE_SECONDS.observe(asyncio.get_running_loop().time() - started)
        if result.has_file:
            COMPILE_BYTES.observe(result.byte_size)
        return result

    async def _upload(self, run: JobRun, delivery: SlackDelivery, outcome: CompileResult) -> str:
        """Stream the PDF from the object store into the parent's thread once (files_upload_v2
        would read it whole into memory): after a failure that may have gone through (the
        completion timed out), the thread is looked at before uploading again. A PDF gone from
        the store fails the job."""
        assert outcome.file_key is not None and outcome.file_name is not None
        assert delivery.parent_channel is not None and delivery.parent_ts is not None
        channel, thread_ts = delivery.parent_channel, delivery.parent_ts
        file_key, file_name = outcome.file_key, outcome.file_name

        async def upload() -> str:
            return await upload_to_thread(
                self.client,
                self.store,
                file_key,
                channel=channel,
                thread_ts=thread_ts,
                filename=file_name,
                title=file_name,
            )

        try:
            return await exactly_once(
                upload,
                lambda: file_in_thread(self.client, channel, thread_ts),
                f"uploading the PDF of job {run.job.id}",
            )
        except BlobMissing as error:
            raise JobFailure(Failure.STORE, str(error)) from error
        except UploadFailed as error:
            raise UploadRefused(str(error)) from error
        except (SlackApiError, SlackRequestError) as error:
            raise UploadRefused(_upload_refusal(error)) from error

    async def _reply(self, run: JobRun, delivery: SlackDelivery, message: Message) -> str:
        """The job's final reply in the parent's thread, posted once."""
        assert delivery.parent_channel is not None
        _, ts = await post_once(
            self.client,
            delivery.parent_channel,
            message,
            _key(run, "final"),
            thread_ts=delivery.parent_ts,
        )
        return ts

    async def tell_failure(
        self, run: JobRun, work: JobWork | None, failure: Failure, detail: str
    ) -> None:
        """Tell the user (in the parent's thread, else by DM), mark the parent failed. Best
        effort: a failure here is logged, never raised."""
        job = run.job
        message = failure_reply(failure, job.id, detail)
        request = work.request if isinstance(work, CompileWork) else None
        notice_user = work.user_id if isinstance(work, NoticeWork) else None
        user_id = request.user_id if request else notice_user
        try:
            delivery = await slack_deliveries.delivery_of(job)
            in_thread = request is not None and delivery.parent_ts is not None
            if delivery.final_reply_ts is None and (in_thread or user_id):
                if in_thread:
                    ts = await self._reply(run, delivery, message)
                else:
                    ts = (await self._direct_message(str(user_id), message, _key(run, "final"))).ts
                with contextlib.suppress(Exception):
                    await slack_deliveries.record_final_reply(job, run.owner, delivery, ts)
            if request is not None and delivery.parent_ts is not None:
                await self._parent(delivery, request.headline).show(Phase.FAILED)
        except Exception:
            log.exception("job %s: could not tell the user about the failure", job.id)


class SlackJobHandler(JobHandler[JobWork]):
    """A kind whose work (`bot.job_work.JobWork`) posts in Slack; ``planner`` decides the work."""

    def __init__(self, deliveries: SlackDeliveries, planner: JobPlanner) -> None:
        self._deliveries = deliveries
        self._planner = planner

    async def plan(self, run: JobRun) -> JobWork:
        return await self._planner(run)

    async def run(self, run: JobRun, work: JobWork) -> str | None:
        if isinstance(work, CompileWork):
            await self._deliveries.compile_steps(run, work.request)
            return None
        if isinstance(work, NoticeWork):
            return await self._deliveries.notice(run, work)
        return work.note

    async def failed(
        self, run: JobRun, work: JobWork | None, failure: Failure, detail: str
    ) -> None:
        await self._deliveries.tell_failure(run, work, failure, detail)

    async def close(self) -> None:
        await self._deliveries.close()


def register_slack_kinds(kinds: JobKinds, deliveries: SlackDeliveries) -> None:
    """Register the kinds that post in Slack: compile_backup (the modal) and digest."""
    kinds.register(COMPILE_BACKUP, SlackJobHandler(deliveries, plan_compile_job))
    kinds.register(DIGEST, SlackJobHandler(deliveries, plan_digest_job))


def _key(run: JobRun, step: str) -> str:
    """The key that marks a job's message in Slack (`bot.delivery.post_once`)."""
    return f"job:{run.job.id}:{step}"
