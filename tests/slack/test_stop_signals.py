"""A stop signal sent to the whole process group of ``invoice-backups serve`` (as systemd's
``KillMode=control-group``, ``docker stop`` with a shell as PID 1 or ``kill -TERM -PGID`` do)
while two big backups compile in its PDF workers.

The workers and their triage children ignore the signal; the main process stops taking work,
gives the jobs the grace period, then ends its workers and puts the unfinished jobs back in the
queue. It exits with status 0 and no traceback, leaves no process behind, and a new process
completes every job exactly once: one parent message, one file, one final reply. A second signal
during the grace period puts the jobs back at once.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from bot.backup_job import enqueue_backup
from commands.compile_backups import INTERRUPTED_WARNING
from storage.blobs import LocalBlobStore
from storage.jobs import Job, JobStatus
from storage.models import Backup
from storage.slack_deliveries import delivery_of
from tests.big_backup import attach_big_files
from tests.process_table import session_processes, triage_children, wait_until
from tests.slack.fake_slack import FakeSlack
from tests.slack.serve_process import (
    ServeProcess,
    prepare_database,
    serve_environment,
    start_serve,
)
from tests.slack.test_slack_lifecycle import pm_payload
from tests.waiting import JOB_PATIENCE, eventually

BIG_INVOICES = (9001, 9002)  # one job each, compiled at the same time by two PDF workers
LONG_GRACE_SECONDS = 300  # far longer than a compile: only the second signal can end it early


async def start_compiling(
    database_url: str, data_dir: Path, tmp_path: Path, fake: FakeSlack, grace: float, name: str
) -> tuple[ServeProcess, list[Job]]:
    """A serve process with two PDF workers, both compiling a big backup (each with its triage
    child running) when this returns; and the two jobs."""
    env = serve_environment(database_url, data_dir, fake, lease=60)
    env.update(BACKUPS_WORKERS="2", BACKUPS_SHUTDOWN_GRACE_SECONDS=str(grace))
    serve = await start_serve(env, tmp_path / f"{name}.log")
    async with aiohttp.ClientSession() as session:
        await serve.wait_healthy(session)
    queued = [
        (await enqueue_backup(f"big-{invoice}", pm_payload((invoice,)))).job
        for invoice in BIG_INVOICES
    ]
    await wait_until(
        lambda: len(triage_children(serve.process.pid)) == 2 or serve.process.returncode,
        120,
        f"two compiles with their triage children:\n{serve.log}",
    )
    assert serve.process.returncode is None, serve.log
    return serve, queued


async def stopped_cleanly(serve: ServeProcess) -> None:
    """``serve`` exits with status 0, logs no error, leaves no process."""
    assert await asyncio.wait_for(serve.process.wait(), 60) == 0, serve.log
    log = serve.log
    assert "Traceback" not in log and " ERROR " not in log, log
    assert "invoice-backups bot stopped" in log
    await wait_until(
        lambda: not session_processes(serve.process.pid), JOB_PATIENCE, "the serve session to end"
    )


async def completed_exactly_once_by_a_new_process(
    database_url: str,
    data_dir: Path,
    tmp_path: Path,
    fake: FakeSlack,
    serves: list[ServeProcess],
    queued: list[Job],
) -> None:
    """Every job: finished, or back in the queue and then completed by a new process; one
    parent message, one file and one final reply each; no partial file left."""
    after_stop = [await Job.get(id=job.id) for job in queued]
    for job in after_stop:
        delivery = await delivery_of(job)
        finished = job.status == JobStatus.SUCCEEDED and delivery.final_reply_ts is not None
        requeued = job.status == JobStatus.QUEUED and job.lease_owner is None
        assert finished or requeued, (job.status, job.lease_owner)
    env = serve_environment(database_url, data_dir, fake, lease=60)
    env.update(BACKUPS_WORKERS="2")
    serves.append(await start_serve(env, tmp_path / "next.log"))

    async def all_done() -> list[Job] | None:
        done = [await Job.get(id=job.id) for job in queued]
        ended = all(job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for job in done)
        return done if ended else None

    done = await eventually(all_done, 300, every=0.2, what="the requeued jobs ended")
    assert all(job.status == JobStatus.SUCCEEDED for job in done), [j.error for j in done]
    parents = fake.top_level_messages()
    deliveries = [await delivery_of(job) for job in done]
    assert {(p.channel, p.ts) for p in parents} == {
        (d.parent_channel, d.parent_ts) for d in deliveries
    }
    assert len(parents) == len(queued)
    for parent in parents:
        assert ": done, " in parent.text
        assert len(fake.files_in_thread(parent.channel, parent.ts)) == 1
        assert len(fake.replies(parent.channel, parent.ts)) == 1
    assert sum(upload.completed for upload in fake.uploads.values()) == len(queued)
    interrupted = await Backup.filter(warnings__contains=[INTERRUPTED_WARNING]).count()
    assert interrupted == sum(job.status == JobStatus.QUEUED for job in after_stop)
    files = sorted(p.name for p in (data_dir / "backups").rglob("*") if p.is_file())
    assert len(files) == len(queued) and all(name.endswith(".pdf") for name in files), files
    serves[-1].signal_group(signal.SIGTERM)
    await stopped_cleanly(serves[-1])


@pytest.mark.postgres
async def test_sigterm_to_the_group_requeues_after_the_grace_and_a_new_process_completes(
    fake_slack: FakeSlack,
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    await attach_big_files(LocalBlobStore(data_dir), BIG_INVOICES, copies=12)
    serve, queued = await start_compiling(
        pg_database, data_dir, tmp_path, fake_slack, grace=1, name="first"
    )
    serves.append(serve)
    serve.signal_group(signal.SIGTERM)
    await stopped_cleanly(serve)
    assert "interrupted by shutdown; released=True" in serve.log
    await completed_exactly_once_by_a_new_process(
        pg_database, data_dir, tmp_path, fake_slack, serves, queued
    )


@pytest.mark.postgres
async def test_a_second_signal_during_the_grace_requeues_at_once(
    fake_slack: FakeSlack,
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    await attach_big_files(LocalBlobStore(data_dir), BIG_INVOICES, copies=12)
    serve, queued = await start_compiling(
        pg_database, data_dir, tmp_path, fake_slack, grace=LONG_GRACE_SECONDS, name="first"
    )
    serves.append(serve)
    serve.signal_group(signal.SIGTERM)
    await wait_until(lambda: "shutting down" in serve.log, 30, "the first signal's effect")
    serve.signal_group(signal.SIGINT)
    await stopped_cleanly(serve)
    assert "second stop signal" in serve.log
    after_stop = [await Job.get(id=job.id) for job in queued]
    assert [job.status for job in after_stop] == [JobStatus.QUEUED] * len(queued)
    await completed_exactly_once_by_a_new_process(
        pg_database, data_dir, tmp_path, fake_slack, serves, queued
    )
