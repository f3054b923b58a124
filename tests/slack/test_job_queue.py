"""The job queue in storage/jobs.py on SQLite and PostgreSQL: idempotent enqueue, exclusive
claims, leases, resumable steps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tortoise import timezone

from storage import jobs, slack_deliveries
from storage.jobs import Job, JobStatus, LeaseLost
from storage.slack_deliveries import delivery_of


async def test_enqueue_is_idempotent_on_the_key(database: str) -> None:
    first = await jobs.enqueue("view:V1:h1", {"invoice_ids": [1, 2]})
    again = await jobs.enqueue("view:V1:h1", {"invoice_ids": [1, 2]})
    assert first.created and not again.created
    assert first.job.id == again.job.id
    assert await Job.all().count() == 1


async def test_concurrent_enqueues_of_one_key_make_one_job(database: str) -> None:
    results = await asyncio.gather(*(jobs.enqueue("view:V2:h", {}) for _ in range(8)))
    assert len({result.job.id for result in results}) == 1
    assert sum(result.created for result in results) == 1


async def test_concurrent_claims_never_share_a_job(database: str) -> None:
    for number in range(5):
        await jobs.enqueue(f"key-{number}", {"n": number})
    claimed = await asyncio.gather(*(jobs.claim_next(f"w{i}", 30) for i in range(8)))
    ids = [job.id for job in claimed if job is not None]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 5
    assert await jobs.claim_next("late", 30) is None
    job = next(job for job in claimed if job is not None)
    assert job.status == JobStatus.RUNNING and job.attempts == 1 and job.lease_owner


async def test_an_expired_lease_is_claimed_again_with_its_steps(database: str) -> None:
    await jobs.enqueue("key", {})
    job = await jobs.claim_next("dead-worker", 30)
    assert job is not None
    delivery = await delivery_of(job)
    await slack_deliveries.record_parent_message(
        job, "dead-worker", delivery, "C1", "111.222", None
    )
    await Job.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    resumed = await jobs.claim_next("new-worker", 30)
    assert resumed is not None and resumed.id == job.id
    resumed_delivery = await delivery_of(resumed)
    assert resumed.attempts == 2 and resumed_delivery.parent_ts == "111.222"
    with pytest.raises(LeaseLost):
        await slack_deliveries.record_upload(job, "dead-worker", delivery, "F1")
    await slack_deliveries.record_upload(resumed, "new-worker", resumed_delivery, "F1")
    await jobs.finish(resumed, "new-worker", JobStatus.SUCCEEDED)
    stored = await Job.get(id=job.id)
    assert stored.status == JobStatus.SUCCEEDED and (await delivery_of(job)).file_id == "F1"
    assert stored.lease_owner is None and stored.finished_at is not None


async def test_a_live_lease_is_not_claimed_and_renewal_keeps_it(database: str) -> None:
    await jobs.enqueue("key", {})
    job = await jobs.claim_next("w1", 30)
    assert job is not None
    assert await jobs.claim_next("w2", 30) is None
    # Its first lease ran out (set in the past, not slept through); w1 renews before anyone
    # else claims the job, and keeps it.
    await Job.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    await jobs.renew_lease(job, "w1", 30)
    assert await jobs.claim_next("w2", 30) is None
    stored = await Job.get(id=job.id)
    assert stored.lease_owner == "w1"
    assert stored.lease_expires_at > timezone.now() + timedelta(seconds=20)


async def test_release_puts_the_job_back_keeping_steps(database: str) -> None:
    await jobs.enqueue("key", {})
    job = await jobs.claim_next("w1", 30)
    assert job is not None
    await slack_deliveries.record_compiled(
        job, "w1", await delivery_of(job), "/tmp/x.pdf", {"status": "succeeded"}
    )
    assert await jobs.release(job, "w1")
    again = await jobs.claim_next("w2", 30)
    assert again is not None
    steps = await delivery_of(again)
    assert steps.pdf_path == "/tmp/x.pdf" and steps.result == {"status": "succeeded"}


async def test_a_one_at_a_time_kind_never_runs_two_jobs_at_once(database: str) -> None:
    kinds = ("sync", jobs.COMPILE_BACKUP)
    for number in range(3):
        await jobs.enqueue(f"sync-{number}", {"n": number}, kind="sync")
    await jobs.enqueue("compile", {}, kind=jobs.COMPILE_BACKUP)
    claimed = await asyncio.gather(
        *(jobs.claim_next(f"w{i}", 30, kinds=kinds, exclusive=("sync",)) for i in range(6))
    )
    running = [job for job in claimed if job is not None]
    # One sync and the compile: the other syncs wait, whichever process asks.
    assert sorted(job.kind for job in running) == [jobs.COMPILE_BACKUP, "sync"]
    first = next(job for job in running if job.kind == "sync")
    assert await jobs.claim_next("late", 30, kinds=kinds, exclusive=("sync",)) is None
    # Without the rule the next sync would be claimed at once.
    assert (await jobs.claim_next("free", 30, kinds=("sync",))) is not None
    await Job.filter(kind="sync", lease_owner="free").update(
        status=JobStatus.QUEUED, lease_owner=None, lease_expires_at=None
    )

    await jobs.finish(first, first.lease_owner or "", JobStatus.SUCCEEDED)
    second = await jobs.claim_next("w9", 30, kinds=kinds, exclusive=("sync",))
    assert second is not None and second.kind == "sync" and second.id != first.id
    assert await jobs.claim_next("w10", 30, kinds=kinds, exclusive=("sync",)) is None

    # A running job whose lease expired (its worker died) is taken over, not doubled.
    await Job.filter(id=second.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = await jobs.claim_next("w11", 30, kinds=kinds, exclusive=("sync",))
    assert taken is not None and taken.id == second.id
    assert await jobs.claim_next("w12", 30, kinds=kinds, exclusive=("sync",)) is None
