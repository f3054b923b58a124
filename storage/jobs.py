"""Durable jobs: a queue in the database that survives restarts and never runs a job twice at once.

Contract:
- `enqueue` is idempotent on ``idempotency_key``: the same key twice yields the same job.
- `claim_next` hands a job to exactly one owner, with a lease (``lease_owner``,
  ``lease_expires_at``). A job whose lease expired (its worker died) is claimable again and
  resumes from its recorded steps.
  On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite, a conditional
  ``UPDATE … WHERE status = 'queued' …`` checked by the number of rows it changed.
- Step recorders (`record_parent_message`, `record_compiled`, `record_upload`, `record_final_reply`)
  write only while the caller still holds the lease, and raise `LeaseLost` otherwise, so a worker
  that lost its job stops before posting anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tortoise import fields, timezone
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.transactions import in_transaction

COMPILE_BACKUP = "compile_backup"
DIGEST = "digest"  # a scheduled (or "run now") weekly backup; planned when it runs


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LeaseLost(Exception):
    """The caller no longer owns the job (its lease expired and another worker claimed it)."""


class Job(Model):
    """One unit of background work, with the steps already done so a resumed run skips them."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=40, default=COMPILE_BACKUP)
    idempotency_key = fields.CharField(max_length=255, unique=True)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED, db_index=True)
    payload: dict[str, Any] = fields.JSONField(default=dict)  # type: ignore[assignment]
    attempts = fields.IntField(default=0)
    lease_owner = fields.CharField(max_length=120, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    # Steps, each recorded right after it happened.
    parent_channel = fields.CharField(max_length=40, null=True)
    parent_ts = fields.CharField(max_length=40, null=True)
    delivery_note = fields.TextField(null=True)  # why the job posts somewhere else than asked
    pdf_path = fields.TextField(null=True)
    result: dict[str, Any] | None = fields.JSONField(null=True)  # type: ignore[assignment]
    file_id = fields.CharField(max_length=40, null=True)
    final_reply_ts = fields.CharField(max_length=40, null=True)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "jobs"

    def __str__(self) -> str:
        return f"Job {self.id} ({self.kind}, {self.status})"


@dataclass(frozen=True)
class Enqueued:
    """What `enqueue` did: the job, and whether this call created it."""

    job: Job
    created: bool


async def enqueue(
    idempotency_key: str, payload: dict[str, Any], *, kind: str = COMPILE_BACKUP
) -> Enqueued:
    """Queue a job unless one with ``idempotency_key`` exists; either way return that job."""
    existing = await Job.get_or_none(idempotency_key=idempotency_key)
    if existing is not None:
        return Enqueued(existing, created=False)
    try:
        job = await Job.create(idempotency_key=idempotency_key, payload=payload, kind=kind)
    except IntegrityError:  # a concurrent enqueue with the same key won the race
        return Enqueued(await Job.get(idempotency_key=idempotency_key), created=False)
    return Enqueued(job, created=True)


def _claimable(now: datetime, kinds: tuple[str, ...]) -> Q:
    abandoned = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    return (Q(status=JobStatus.QUEUED) | abandoned) & Q(kind__in=list(kinds))


async def claim_next(
    owner: str, lease_seconds: float, *, kinds: tuple[str, ...] = (COMPILE_BACKUP,)
) -> Job | None:
    """Give the oldest claimable job to ``owner`` (status running, a fresh lease, attempts + 1).

    Returns None when nothing is waiting. Two concurrent callers never get the same job.
    """
    now = timezone.now()
    claimed = {
        "status": JobStatus.RUNNING,
        "lease_owner": owner,
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "attempts": F("attempts") + 1,
    }
    async with in_transaction() as connection:
        if connection.capabilities.support_for_update:
            job = (
                await Job.filter(_claimable(now, kinds))
                .order_by("id")
                .select_for_update(skip_locked=True)
                .using_db(connection)
                .first()
            )
            if job is None:
                return None
            await Job.filter(id=job.id).using_db(connection).update(**claimed)
            job_id = job.id
        else:
            job_id = None
            candidates = (
                await Job.filter(_claimable(now, kinds))
                .order_by("id")
                .limit(10)
                .using_db(connection)
                .values_list("id", flat=True)
            )
            for candidate in candidates:
                changed = (
                    await Job.filter(Q(id=candidate) & _claimable(now, kinds))
                    .using_db(connection)
                    .update(**claimed)
                )
                if changed == 1:
                    job_id = candidate
                    break
            if job_id is None:
                return None
    return await Job.get(id=job_id)


def _owned(job: Job, owner: str) -> Q:
    return Q(id=job.id, lease_owner=owner, status=JobStatus.RUNNING)


async def _update_owned(job: Job, owner: str, **values: Any) -> None:
    changed = await Job.filter(_owned(job, owner)).update(**values)
    if changed != 1:
        raise LeaseLost(f"job {job.id} is no longer owned by {owner}")
    for name, value in values.items():
        setattr(job, name, value)


async def renew_lease(job: Job, owner: str, lease_seconds: float) -> None:
    """Push the lease of a running job forward; raise `LeaseLost` if ``owner`` lost it."""
    await _update_owned(
        job, owner, lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds)
    )


async def record_plan(job: Job, owner: str, payload: dict[str, Any]) -> None:
    """Step: what the job does was decided when it ran (a digest's plan), kept in ``payload`` so
    a resumed job carries on with the same decision."""
    await _update_owned(job, owner, payload=payload)


async def record_parent_message(
    job: Job, owner: str, channel: str, ts: str, note: str | None
) -> None:
    """Step: the parent message was posted in ``channel`` at ``ts`` (``note``: why there)."""
    await _update_owned(job, owner, parent_channel=channel, parent_ts=ts, delivery_note=note)


async def record_compiled(
    job: Job, owner: str, pdf_path: str | None, result: dict[str, Any]
) -> None:
    """Step: the backup was compiled (``pdf_path`` None when nothing could be compiled)."""
    await _update_owned(job, owner, pdf_path=pdf_path, result=result)


async def record_upload(job: Job, owner: str, file_id: str) -> None:
    """Step: the PDF was uploaded to Slack as ``file_id``."""
    await _update_owned(job, owner, file_id=file_id)


async def record_final_reply(job: Job, owner: str, ts: str) -> None:
    """Step: the final thread reply (success, warning or failure) was posted at ``ts``."""
    await _update_owned(job, owner, final_reply_ts=ts)


async def finish(job: Job, owner: str, status: JobStatus, error: str | None = None) -> None:
    """End the job as succeeded or failed and drop the lease."""
    if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        raise ValueError(f"a job finishes as succeeded or failed, not {status}")
    await _update_owned(
        job,
        owner,
        status=status,
        error=error,
        lease_owner=None,
        lease_expires_at=None,
        finished_at=timezone.now(),
    )


async def release(job: Job, owner: str) -> bool:
    """Hand a running job back to the queue (shutdown); its steps stay, so it resumes later.

    A release is not a failed attempt, so ``attempts`` goes back down by one. Returns False if
    ``owner`` no longer held it.
    """
    changed = await Job.filter(_owned(job, owner)).update(
        status=JobStatus.QUEUED,
        lease_owner=None,
        lease_expires_at=None,
        attempts=F("attempts") - 1,
    )
    return changed == 1


async def get_job(job_id: int) -> Job | None:
    """The job with this id, if any."""
    return await Job.get_or_none(id=job_id)


async def jobs_with_key_prefix(prefix: str) -> list[Job]:
    """Jobs whose idempotency key starts with ``prefix``, oldest first (for tests and tooling)."""
    return await Job.filter(idempotency_key__startswith=prefix).order_by("id")


async def count_by_kind_and_status() -> dict[tuple[str, str], int]:
    """How many jobs of each kind are in each status (for the metrics)."""
    rows = (
        await Job.annotate(count=Count("id"))
        .group_by("kind", "status")
        .values("kind", "status", "count")
    )
    return {(str(row["kind"]), str(row["status"])): int(row["count"]) for row in rows}


async def count_by_status() -> dict[str, int]:
    """How many jobs are in each status (also a cheap database liveness check)."""
    counts = {status.value: 0 for status in JobStatus}
    rows = await Job.annotate(count=Count("id")).group_by("status").values("status", "count")
    for row in rows:
        counts[str(row["status"])] = int(row["count"])
    return counts
