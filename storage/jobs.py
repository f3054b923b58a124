"""Durable jobs: a queue in the database that survives restarts and never runs a job twice at once.

A `Job` is generic: its ``kind`` names the handler that runs it (`bot.job_kinds`), ``payload``
what was asked, ``state`` what the handler decided or did so far (a resumed run reads it). What a
Slack delivery posted lives in its own table (`storage.slack_deliveries`).

Contract:
- `enqueue` is idempotent on ``idempotency_key``: the same key twice yields the same job. A new
  job wakes the idle workers: those of this process at once (`on_enqueue`), those of other
  processes on PostgreSQL by ``NOTIFY`` (channel `NOTIFY_CHANNEL`) sent in the enqueue transaction.
- `claim_next` hands a job to exactly one owner, with a lease (``lease_owner``,
  ``lease_expires_at``). A running job is claimable again (and resumes from its recorded steps)
  when its lease expired, or, on PostgreSQL, at once when its owner is dead: an owner that claims
  with an ``owner_lock`` key holds that session-level advisory lock while it lives
  (`storage.job_presence`), and PostgreSQL frees it when the owner's connection dies.
  On PostgreSQL the claim is ``SELECT … FOR UPDATE SKIP LOCKED``; on SQLite, a conditional
  ``UPDATE … WHERE status = 'queued' …`` checked by the number of rows it changed.
- One at a time: a queued job of a kind named in ``claim_next``'s ``exclusive`` is not claimed
  while any job of that kind is running, in any process (a job that runs past its period, e.g.
  a long Procore sync, never overlaps the next one; the next one waits). On PostgreSQL such
  claims are serialised by a transaction-level advisory lock, so two processes cannot both see
  "none running"; SQLite serialises every write.
- `start_running` creates a job of a one-at-a-time kind already running for a caller that runs
  it itself (``invoice-backups procore sync``), under the same rule: never while another job of
  that kind runs.
- Writes on behalf of a running job (`record_state`, `finish`, the Slack delivery's steps) go
  through only while the caller still holds the lease, and raise `LeaseLost` otherwise, so a worker
  that lost its job stops before doing anything twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from tortoise import connections, fields, timezone
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q, Subquery
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.transactions import in_transaction

from storage.schema import CONNECTION

log = logging.getLogger(__name__)

COMPILE_BACKUP = "compile_backup"
DIGEST = "digest"  # a scheduled (or "run now") weekly backup; planned when it runs
NOTIFY_CHANNEL = "invoice_backups_jobs"  # PostgreSQL: a job was queued (payload: its kind)
# PostgreSQL: the advisory-lock key that serialises claims involving one-at-a-time kinds.
EXCLUSIVE_CLAIM_LOCK = int.from_bytes(
    hashlib.blake2b(b"exclusive-claims", digest_size=8, person=b"job-claim").digest(),
    "big",
    signed=True,
)

_enqueue_listeners: set[Callable[[str], None]] = set()


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class LeaseLost(Exception):
    """The caller no longer owns the job (its lease expired and another worker claimed it)."""


class Job(Model):
    """One unit of background work of some kind, with what its handler did so far."""

    id = fields.IntField(primary_key=True)
    kind = fields.CharField(max_length=40, default=COMPILE_BACKUP)
    idempotency_key = fields.CharField(max_length=255, unique=True)
    status = fields.CharEnumField(JobStatus, max_length=16, default=JobStatus.QUEUED, db_index=True)
    payload: dict[str, Any] = fields.JSONField(default=dict)  # type: ignore[assignment]
    attempts = fields.IntField(default=0)
    # What the handler decided or did so far, recorded as it goes (a resumed run reads it); a
    # new job's is {} (nullable only because SQLite cannot add a NOT NULL column to a table).
    state: dict[str, Any] | None = fields.JSONField(default=dict, null=True)  # type: ignore[assignment]
    lease_owner = fields.CharField(max_length=120, null=True)
    lease_expires_at = fields.DatetimeField(null=True)
    # PostgreSQL: the advisory-lock key the owner holds while alive (None: only the lease tells).
    owner_lock = fields.BigIntField(null=True)
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


def on_enqueue(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(kind)`` whenever this process queues a new job; returns the unsubscribe."""
    _enqueue_listeners.add(listener)
    return lambda: _enqueue_listeners.discard(listener)


def _announce(kind: str) -> None:
    for listener in list(_enqueue_listeners):
        try:
            listener(kind)
        except Exception:
            log.exception("a job enqueue listener failed")


def pg_notify_new_job(kind: str) -> str:
    """PostgreSQL: the SQL expression that wakes the workers of every process for a job of
    ``kind`` (an SQL expression) queued by the statement (sent when its transaction commits)."""
    return f"pg_notify('{NOTIFY_CHANNEL}', {kind})"


def pg_insert_new_job(*, kind: str, key: str, payload: str, now: str, source: str) -> str:
    """PostgreSQL: for a statement that queues a job itself (`storage.webhooks`), the
    ``INSERT … SELECT … FROM source … RETURNING id, kind`` of the row `enqueue` writes, unless a
    job has that key; each argument is an SQL expression (``payload``: JSON text). Send
    `pg_notify_new_job` for each row it returns."""
    return f"""INSERT INTO jobs (kind, idempotency_key, status, payload, attempts, state,
                  created_at, updated_at)
SELECT {kind}, {key}, '{JobStatus.QUEUED.value}', ({payload})::jsonb, 0, '{{}}'::jsonb,
       {now}, {now}
FROM {source}
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, kind"""


async def _notify(connection: BaseDBAsyncClient, kind: str) -> None:
    """PostgreSQL: tell the listening workers of every process (sent when the transaction
    commits)."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query(f"SELECT {pg_notify_new_job('$1')}", [kind])


async def enqueue(
    idempotency_key: str, payload: dict[str, Any], *, kind: str = COMPILE_BACKUP
) -> Enqueued:
    """Queue a job unless one with ``idempotency_key`` exists; either way return that job."""
    existing = await Job.get_or_none(idempotency_key=idempotency_key)
    if existing is not None:
        return Enqueued(existing, created=False)
    try:
        async with in_transaction() as connection:
            job = await Job.create(
                idempotency_key=idempotency_key, payload=payload, kind=kind, using_db=connection
            )
            await _notify(connection, kind)
    except IntegrityError:  # a concurrent enqueue with the same key won the race
        return Enqueued(await Job.get(idempotency_key=idempotency_key), created=False)
    _announce(kind)
    return Enqueued(job, created=True)


def owner_lock_key(owner: str) -> int:
    """The advisory-lock key (a signed 64-bit integer) a live ``owner`` holds on PostgreSQL."""
    digest = hashlib.blake2b(owner.encode(), digest_size=8, person=b"job-owner").digest()
    return int.from_bytes(digest, "big", signed=True)


# PostgreSQL: the oldest claimable job, taken in one statement. A running job whose owner's
# advisory lock is free (the owner is dead) is claimable at once; the transaction-level try-lock
# is released when the statement ends.
_PG_CLAIM = """
WITH candidate AS (
    SELECT id FROM jobs
    WHERE kind = ANY($1::text[])
      AND ((status = 'queued'
            AND (NOT (kind = ANY($7::text[]))
                 OR NOT EXISTS (SELECT 1 FROM jobs AS other
                                WHERE other.kind = jobs.kind AND other.status = 'running')))
           OR (status = 'running'
               AND (lease_expires_at < $2
                    OR ($6 AND owner_lock IS NOT NULL AND pg_try_advisory_xact_lock(owner_lock)))))
    ORDER BY id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs
SET status = 'running', lease_owner = $3, lease_expires_at = $4, owner_lock = $5,
    attempts = jobs.attempts + 1, updated_at = $2
FROM candidate
WHERE jobs.id = candidate.id
RETURNING jobs.id
"""


async def claim_next(
    owner: str,
    lease_seconds: float,
    *,
    kinds: tuple[str, ...] = (COMPILE_BACKUP,),
    owner_lock: int | None = None,
    take_over_dead: bool = False,
    exclusive: tuple[str, ...] = (),
) -> Job | None:
    """Give the oldest claimable job to ``owner`` (status running, a fresh lease, attempts + 1).

    ``owner_lock``: the advisory-lock key ``owner`` holds for as long as it lives (PostgreSQL,
    `storage.job_presence`); with it, others take the job over as soon as the lock is free.
    ``take_over_dead``: also claim running jobs whose owner's lock is free (PostgreSQL).
    ``exclusive``: kinds of which at most one job runs at a time (see the module contract).
    Returns None when nothing is waiting. Two concurrent callers never get the same job.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=lease_seconds)
    exclusive = tuple(kind for kind in exclusive if kind in kinds)
    client = connections.get(CONNECTION)
    params = [list(kinds), now, owner, expires, owner_lock, take_over_dead, list(exclusive)]
    if client.capabilities.dialect == "postgres" and not exclusive:
        # One statement: a transaction of its own.
        _, rows = await client.execute_query(_PG_CLAIM, params)
        job_id = int(rows[0]["id"]) if rows else None
    elif client.capabilities.dialect == "postgres":
        async with in_transaction() as connection:
            await _lock_exclusive_claims(connection)
            _, rows = await connection.execute_query(_PG_CLAIM, params)
        job_id = int(rows[0]["id"]) if rows else None
    else:
        async with in_transaction() as connection:
            job_id = await _claim_by_conditional_update(
                connection, owner, now, expires, kinds, exclusive
            )
    return None if job_id is None else await Job.get(id=job_id)


async def _lock_exclusive_claims(connection: BaseDBAsyncClient) -> None:
    """PostgreSQL: take `EXCLUSIVE_CLAIM_LOCK` for the rest of ``connection``'s transaction,
    waiting for any other claim or start of a one-at-a-time kind to commit; what the
    transaction reads next (READ COMMITTED: a fresh snapshot) sees every job that one started.
    SQLite serialises every write already: nothing to do."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [EXCLUSIVE_CLAIM_LOCK])


class _KindBusy(Exception):
    """Rolls back `start_running`: a job of the kind is running already."""


async def start_running(
    idempotency_key: str,
    payload: dict[str, Any],
    *,
    kind: str,
    owner: str,
    lease_seconds: float,
) -> Job | None:
    """A new job of a one-at-a-time ``kind``, created already running for ``owner`` (a process
    that runs it itself rather than queueing it, e.g. the command line), unless a job of
    ``kind`` is running: then None and nothing is created (try again later).

    The same rule as `claim_next` with ``exclusive``: the row is inserted and the check made
    in one transaction, under `EXCLUSIVE_CLAIM_LOCK` on PostgreSQL (which every exclusive claim
    takes) and under SQLite's write lock (the insert takes it), so a worker's claim of another
    job of ``kind`` and this start never both see "none running". The owner renews the lease
    (`renew_lease`) and ends the job (`finish`); should it die, the job is claimable again
    when its lease expires, like any running job, and its kind's handler resumes it."""
    now = timezone.now()
    try:
        async with in_transaction() as connection:
            await _lock_exclusive_claims(connection)
            job = await Job.create(
                idempotency_key=idempotency_key,
                payload=payload,
                kind=kind,
                status=JobStatus.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=1,
                using_db=connection,
            )
            if (
                await Job.filter(kind=kind, status=JobStatus.RUNNING)
                .exclude(id=job.id)
                .using_db(connection)
                .exists()
            ):
                raise _KindBusy
    except _KindBusy:
        return None
    return job


def _claimable(now: datetime, kinds: tuple[str, ...], exclusive: tuple[str, ...] = ()) -> Q:
    abandoned = Q(status=JobStatus.RUNNING, lease_expires_at__lt=now)
    queued = Q(status=JobStatus.QUEUED)
    if exclusive:
        running_kinds = Subquery(
            Job.filter(status=JobStatus.RUNNING, kind__in=list(exclusive)).values("kind")
        )
        queued &= ~Q(kind__in=list(exclusive)) | ~Q(kind__in=running_kinds)
    return (queued | abandoned) & Q(kind__in=list(kinds))


async def _claim_by_conditional_update(
    connection: BaseDBAsyncClient,
    owner: str,
    now: datetime,
    expires: datetime,
    kinds: tuple[str, ...],
    exclusive: tuple[str, ...] = (),
) -> int | None:
    """SQLite: claim the first candidate whose conditional update changes one row (the
    update re-checks, under SQLite's write lock, that no job of an exclusive kind runs)."""
    claimed = {
        "status": JobStatus.RUNNING,
        "lease_owner": owner,
        "lease_expires_at": expires,
        "owner_lock": None,
        "attempts": F("attempts") + 1,
    }
    candidates = (
        await Job.filter(_claimable(now, kinds, exclusive))
        .order_by("id")
        .limit(10)
        .using_db(connection)
        .values_list("id", flat=True)
    )
    for candidate in candidates:
        changed = (
            await Job.filter(Q(id=candidate) & _claimable(now, kinds, exclusive))
            .using_db(connection)
            .update(**claimed)
        )
        if changed == 1:
            return int(candidate)
    return None


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


async def fence(job: Job, owner: str, connection: BaseDBAsyncClient) -> None:
    """Within ``connection``'s transaction: make sure ``owner`` still holds ``job`` (and lock its
    row until the transaction ends, on PostgreSQL); raise `LeaseLost` otherwise. For tables that
    record a job's steps beside it (`storage.slack_deliveries`)."""
    changed = (
        await Job.filter(_owned(job, owner)).using_db(connection).update(updated_at=timezone.now())
    )
    if changed != 1:
        raise LeaseLost(f"job {job.id} is no longer owned by {owner}")


async def record_state(job: Job, owner: str, **values: Any) -> None:
    """Step: merge ``values`` (JSON types) into the job's ``state``, so a resumed run carries on
    with what was decided or done."""
    await _update_owned(job, owner, state={**(job.state or {}), **values})


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
        owner_lock=None,
        finished_at=timezone.now(),
    )


async def release(job: Job, owner: str) -> bool:
    """Hand a running job back to the queue (shutdown); its steps stay, so it resumes later.

    A release is not a failed attempt, so ``attempts`` goes back down by one. Returns False if
    ``owner`` no longer held it.
    """
    async with in_transaction() as connection:
        changed = (
            await Job.filter(_owned(job, owner))
            .using_db(connection)
            .update(
                status=JobStatus.QUEUED,
                lease_owner=None,
                lease_expires_at=None,
                owner_lock=None,
                attempts=F("attempts") - 1,
            )
        )
        if changed == 1:
            await _notify(connection, job.kind)
    return changed == 1


async def get_job(job_id: int) -> Job | None:
    """The job with this id, if any."""
    return await Job.get_or_none(id=job_id)


async def jobs_with_key_prefix(prefix: str) -> list[Job]:
    """Jobs whose idempotency key starts with ``prefix``, oldest first (for tests and tooling)."""
    return await Job.filter(idempotency_key__startswith=prefix).order_by("id")


async def first_queued(kind: str, key_prefix: str) -> Job | None:
    """The oldest job of ``kind`` still waiting to start whose key starts with ``key_prefix``."""
    return (
        await Job.filter(kind=kind, status=JobStatus.QUEUED, idempotency_key__startswith=key_prefix)
        .order_by("id")
        .first()
    )


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
