"""Procore sync jobs: the ``procore_sync`` job kind (`ProcoreSyncHandler`), the scheduled sync
every PROCORE_SYNC_MINUTES and the ``/compile-backups sync`` request.

- Scheduled: every process's scheduler enqueues, every period, a job keyed by the time slot
  (`slot_key`: the start of the current period, the same in every process), so N processes make
  one sync per slot.
- Never overlapping: the kind is registered one at a time (`bot.server`), so no two sync jobs
  run at once in any process (a sync longer than the period delays the next, which coalesces:
  `enqueue_scheduled_sync`); syncs of the same project therefore never overlap.
- Asked in Slack: one job per slash command (keyed by its trigger id, so a retried request makes
  one job), naming the projects; the result is posted where it was asked (by DM when the bot can't
  post there).

- From the command line (``invoice-backups procore sync``, `sync_in_this_process`): a job of
  this kind too, created already running for the command (`storage.jobs.start_running`), which
  runs it itself (its progress on its terminal) while renewing the lease; it waits while
  another sync job runs, and no sync job starts while it runs. Should the command die, the job
  is taken over when its lease expires and finished by a bot process.

``Job.payload``: ``{"project_ids": [...], "full": bool, "channel_id", "user_id"}`` (the last two
only when someone asked); ``project_ids`` None: every project the service account lists, or
those of ``project_numbers`` (command line). ``Job.state["posted"]`` records the result
message, so a resumed job never posts it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.blocks.common import Message, section
from bot.blocks.messages import Failure
from bot.delivery import post_with_dm_fallback
from bot.job_kinds import JobFailure, JobHandler, JobRun
from bot.worker import keep_lease
from commands.sync_procore import SyncProgress, SyncReport, sync_company, sync_project
from procore.client import ProcoreClient
from procore.errors import ProcoreError
from storage import jobs
from storage.jobs import Enqueued, Job, JobStatus, LeaseLost
from storage.models import Project

log = logging.getLogger(__name__)

PROCORE_SYNC = "procore_sync"
SCHEDULED_KEY_PREFIX = "procore-sync:"
COMMAND_LINE_KEY_PREFIX = "procore-sync-cli:"
WAIT_POLL_SECONDS = 2.0  # how often a command-line sync looks whether the running one ended


def slot_key(now: datetime, minutes: int) -> str:
    """The idempotency key of the scheduled sync of the period ``now`` falls in."""
    period = timedelta(minutes=minutes)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    slot = epoch + ((now.astimezone(UTC) - epoch) // period) * period
    return f"{SCHEDULED_KEY_PREFIX}{slot.strftime('%Y-%m-%dT%H:%MZ')}"


async def enqueue_scheduled_sync(now: datetime, minutes: int) -> Enqueued:
    """Queue the sync of every reachable project for the current slot (once across processes).

    Coalesces: while an earlier slot's sync still waits to start (a sync running past its
    period holds it back: the kind runs one at a time), that one is returned and no new job is
    queued, so a long sync is followed by one sync, not by one per period it outlasted."""
    waiting = await jobs.first_queued(PROCORE_SYNC, SCHEDULED_KEY_PREFIX)
    if waiting is not None:
        return Enqueued(waiting, created=False)
    return await jobs.enqueue(slot_key(now, minutes), {"project_ids": None}, kind=PROCORE_SYNC)


async def enqueue_requested_sync(
    trigger_id: str, project_ids: list[int], channel_id: str, user_id: str
) -> Enqueued:
    """Queue a sync asked in Slack (``/compile-backups sync``); one job per request."""
    return await jobs.enqueue(
        f"procore-sync-now:{trigger_id}",
        {"project_ids": project_ids, "full": False, "channel_id": channel_id, "user_id": user_id},
        kind=PROCORE_SYNC,
    )


def result_message(report: SyncReport, note: str | None = None) -> Message:
    """The posted outcome of a requested sync: one line per project."""
    lines = [f"Procore sync: {'done' if report.all_synced else 'done, with problems'}."]
    lines += [f"• {line.render()}" for line in report.lines]
    if note:
        lines.append(f"_{note}_")
    text = "\n".join(lines)
    return Message.of(text, [section(text)])


def _summary(report: SyncReport) -> str:
    """The job's note: one line per project (or the report's one line when none was synced)."""
    return "; ".join(line.render() for line in report.lines) or report.render()


class ProcoreSyncHandler(JobHandler[None]):
    """Runs ``procore_sync`` jobs with the one `ProcoreClient` of the process."""

    def __init__(self, procore: ProcoreClient, slack: AsyncWebClient) -> None:
        self._procore = procore
        self._slack = slack

    async def run(self, run: JobRun, work: None) -> str | None:
        payload: dict[str, Any] = run.job.payload
        project_ids = payload.get("project_ids")
        full = bool(payload.get("full"))
        try:
            if project_ids is None:
                report = await sync_company(
                    self._procore,
                    project_numbers=payload.get("project_numbers") or (),
                    full=full,
                )
            else:
                lines = []
                for project_id in project_ids:
                    stored = await Project.get_or_none(id=int(project_id))
                    listed = (
                        {"name": stored.name, "project_number": stored.project_number}
                        if stored
                        else None
                    )
                    lines.append(
                        await sync_project(self._procore, int(project_id), full=full, listed=listed)
                    )
                report = SyncReport(tuple(lines))
        except ProcoreError as error:
            raise JobFailure(Failure.UNEXPECTED, " ".join(str(error).split())) from error
        summary = _summary(report)
        log.info("Procore sync: %s", summary)
        if payload.get("channel_id") and not (run.job.state or {}).get("posted"):
            await run.fence()
            posted = await post_with_dm_fallback(
                self._slack,
                str(payload["channel_id"]),
                str(payload.get("user_id") or ""),
                lambda note: result_message(report, note),
                key=f"job:{run.job.id}:result",
            )
            await run.recorded(lambda: run.record_state(posted=posted.ts))
        return summary[:1000]

    async def failed(self, run: JobRun, work: None, failure: Failure, detail: str) -> None:
        payload = run.job.payload
        log.warning("Procore sync failed: %s", detail)
        if not payload.get("channel_id"):
            return
        try:
            await post_with_dm_fallback(
                self._slack,
                str(payload["channel_id"]),
                str(payload.get("user_id") or ""),
                lambda note: Message(
                    text=f"Procore sync failed: {detail}" + (f" ({note})" if note else "")
                ),
                key=f"job:{run.job.id}:failure",
            )
        except Exception as error:  # best effort: the job row keeps the error
            log.warning("could not tell that the Procore sync failed: %s", error)


class SyncTakenOver(Exception):
    """A command-line sync lost its job's lease (it could not renew it in time) and stopped, so
    that it never overlaps the worker that took the job over."""


async def sync_in_this_process(
    procore: ProcoreClient,
    *,
    owner: str,
    lease_seconds: float,
    project_numbers: Sequence[str] = (),
    full: bool = False,
    progress: SyncProgress | None = None,
    waiting: Callable[[Job], Awaitable[None]] | None = None,
    poll_seconds: float = WAIT_POLL_SECONDS,
) -> SyncReport:
    """`commands.sync_procore.sync_company` run here, as a ``procore_sync`` job of its own (see
    the module docstring): never at the same time as another sync job, in any process.

    ``waiting(job)`` is told once, with the running job, when this sync has to wait for it.
    The job ends succeeded (its note: one line per project) or failed (the error, or
    "interrupted" when cancelled). Raises what `sync_company` raises, and `SyncTakenOver`."""
    payload = {"project_ids": None, "project_numbers": list(project_numbers), "full": full}
    told = False
    while True:
        job = await jobs.start_running(
            f"{COMMAND_LINE_KEY_PREFIX}{uuid.uuid4().hex}",
            payload,
            kind=PROCORE_SYNC,
            owner=owner,
            lease_seconds=lease_seconds,
        )
        if job is not None:
            break
        running = await Job.filter(kind=PROCORE_SYNC, status=JobStatus.RUNNING).first()
        if waiting is not None and running is not None and not told:
            told = True
            await waiting(running)
        await asyncio.sleep(poll_seconds)
    sync = asyncio.ensure_future(
        sync_company(procore, project_numbers=project_numbers, full=full, progress=progress)
    )
    renewer = asyncio.create_task(keep_lease(job, owner, lease_seconds, sync))
    try:
        report = await sync
    except asyncio.CancelledError:
        if renewer.done() and not renewer.cancelled():  # it returns only when the lease is lost
            raise SyncTakenOver(f"job {job.id} was taken over by another process") from None
        await _end(job, owner, JobStatus.FAILED, "interrupted")
        raise
    except BaseException as error:
        await _end(job, owner, JobStatus.FAILED, " ".join(str(error).split())[:1000])
        raise
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
    await _end(job, owner, JobStatus.SUCCEEDED, _summary(report)[:1000])
    return report


async def _end(job: Job, owner: str, status: JobStatus, note: str) -> None:
    """End the command line's job (best effort: a lost lease means another process has it)."""
    try:
        await asyncio.shield(jobs.finish(job, owner, status, note))
    except LeaseLost:
        log.warning("command-line Procore sync: job %s was taken over", job.id)
