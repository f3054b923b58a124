"""Job kinds through one registry (bot/job_kinds.py, bot/worker.py), on SQLite and PostgreSQL:
a kind is one registration; the worker wakes when a job is queued; on PostgreSQL a dead owner's
running job is taken over at once (its advisory lock is free), a live one's never.

The ``echo`` kind below exists only here: it shows what adding a kind takes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from bot.blocks.messages import Failure
from bot.job_kinds import JobFailure, JobHandler, JobKinds, JobRun
from bot.worker import JobWorker
from storage import jobs
from storage.job_presence import WorkerPresence
from storage.jobs import Job, JobStatus, owner_lock_key
from tests.waiting import JOB_PATIENCE, eventually

ECHO = "echo"


class EchoHandler(JobHandler[str]):
    """A tiny kind: plans "say <text>" once (recorded in the state), then says it once."""

    def __init__(self) -> None:
        self.said: list[str] = []
        self.failures: list[tuple[int, Failure, str]] = []
        self.started = asyncio.Event()

    async def plan(self, run: JobRun) -> str:
        if "plan" not in (run.job.state or {}):
            await run.record_state(plan=f"say {run.job.payload['text']}")
        return str(run.job.state["plan"])  # type: ignore[index]

    async def run(self, run: JobRun, work: str) -> str | None:
        self.started.set()
        if run.job.payload.get("refuse"):
            raise JobFailure(Failure.UNEXPECTED, "refused on purpose")
        await run.fence()
        self.said.append(work)
        return f"said {work!r}"

    async def failed(self, run: JobRun, work: str | None, failure: Failure, detail: str) -> None:
        self.failures.append((run.job.id, failure, detail))


def echo_worker(**options: Any) -> tuple[JobWorker, EchoHandler]:
    handler = EchoHandler()
    kinds = JobKinds()
    kinds.register(ECHO, handler)
    return JobWorker(kinds, **options), handler


async def ended(job_id: int, within: float = 30.0) -> Job:
    """The job once it succeeded or failed (polled, with a deadline)."""

    async def done() -> Job | None:
        job = await Job.get(id=job_id)
        return job if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) else None

    return await eventually(done, within, what=f"job {job_id} ended")


def test_a_kind_is_registered_once() -> None:
    kinds = JobKinds()
    kinds.register(ECHO, EchoHandler())
    assert kinds.kinds == (ECHO,)
    with pytest.raises(ValueError, match="already registered"):
        kinds.register(ECHO, EchoHandler())


async def test_a_registered_kind_runs_through_the_worker(database: str) -> None:
    # A poll far longer than the deadline: only the wake-up on enqueue can start these in time.
    worker, handler = echo_worker(poll_seconds=600)
    await worker.start()
    try:
        said = await jobs.enqueue("echo-1", {"text": "hello"}, kind=ECHO)
        refused = await jobs.enqueue("echo-2", {"text": "no", "refuse": True}, kind=ECHO)
        other = await jobs.enqueue("compile-1", {}, kind="compile_backup")
        done = await ended(said.job.id)
        failed = await ended(refused.job.id)
    finally:
        await worker.stop(5)
    assert done.status == JobStatus.SUCCEEDED and done.error == "said 'say hello'"
    assert done.state == {"plan": "say hello"} and done.attempts == 1
    assert handler.said == ["say hello"]
    assert failed.status == JobStatus.FAILED and failed.error == "unexpected: refused on purpose"
    assert handler.failures == [(refused.job.id, Failure.UNEXPECTED, "refused on purpose")]
    # a kind this worker has no handler for stays queued for a worker that has
    assert (await Job.get(id=other.job.id)).status == JobStatus.QUEUED


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_dead_owners_job_is_taken_over_at_once_a_live_ones_never(
    database: str,
) -> None:
    await jobs.enqueue("held", {"text": "x"}, kind=ECHO)
    await jobs.enqueue("lease-only", {"text": "y"}, kind=ECHO)
    owner = "host:1:alive"
    key = owner_lock_key(owner)
    lock_holder = await asyncpg.connect(database.replace("postgres://", "postgresql://", 1))
    await lock_holder.execute("SELECT pg_advisory_lock($1)", key)
    held = await jobs.claim_next(owner, 60, kinds=(ECHO,), owner_lock=key)
    lease_only = await jobs.claim_next("host:2:no-lock", 60, kinds=(ECHO,))
    assert held is not None and held.owner_lock == key
    assert lease_only is not None and lease_only.owner_lock is None

    # The owner lives: nothing to take over, whoever asks.
    assert await jobs.claim_next("other", 60, kinds=(ECHO,), take_over_dead=True) is None
    await lock_holder.close()  # the owner's connection dies: PostgreSQL frees its lock
    assert await jobs.claim_next("other", 60, kinds=(ECHO,)) is None  # unless told to take over
    taken = await jobs.claim_next("other", 60, kinds=(ECHO,), take_over_dead=True)
    assert taken is not None and taken.id == held.id
    assert taken.lease_owner == "other" and taken.attempts == 2
    # A job claimed without a lock (lease only) waits for its lease, as on SQLite.
    assert await jobs.claim_next("third", 60, kinds=(ECHO,), take_over_dead=True) is None


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_enqueue_notifies_the_listening_workers(database: str) -> None:
    woken = asyncio.Event()
    presence = WorkerPresence("host:3:listener", woken.set)
    assert await presence.start()
    try:
        assert presence.lock_key == owner_lock_key("host:3:listener")
        woken.clear()  # (connecting wakes it once: notifications may have been missed)
        # Queued through the pool (another connection): only its NOTIFY reaches the presence.
        await jobs.enqueue("elsewhere", {"text": "z"}, kind=ECHO)
        await asyncio.wait_for(woken.wait(), JOB_PATIENCE)
    finally:
        await presence.close()
    assert presence.lock_key is None
