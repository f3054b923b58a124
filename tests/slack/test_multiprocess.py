"""Scale-out: two real ``invoice-backups serve`` processes (HTTP mode) on one PostgreSQL database,
one fake Slack in the test process, submissions spread over both (each modal opened through one
process and submitted through the other, as a load balancer would).

- One process is killed with SIGKILL (its whole process group: PDF workers included) while it
  holds jobs: the other takes them over and every submission ends with exactly one parent
  message, one file and one final reply. With a 60 s lease, the other process resumes them within
  seconds: PostgreSQL freed the dead process's advisory lock when its connection died.
- The database is restarted during a run (a private PostgreSQL server): the jobs pause and go
  on; neither process crashes.
- ``serve`` on a database the migrations have not built stops with one line (exit status 2).

The kill lands where the job records agree with what Slack received (both processes frozen with
SIGSTOP while the test compares them, the fake Slack answering nothing): a kill in the instant
between a Slack call and the record of its step would post that step again, which no lease can
prevent (README: "Running several processes").
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from storage.jobs import Job, JobStatus
from storage.slack_deliveries import SlackDelivery
from tests.slack.conftest import DEMO_PROJECT, PM, SIGNING_SECRET
from tests.slack.fake_slack import FakeSlack
from tests.slack.private_postgres import PrivatePostgres
from tests.slack.serve_process import (
    ServeProcess,
    prepare_database,
    serve_environment,
    start_serve,
)
from tests.slack.slack_driver import SlackDriver, invoice_options
from tests.slack.test_observability import sample
from tests.slack.test_stop_signals import stopped_cleanly
from tests.waiting import JOB_PATIENCE, eventually

SUBMISSIONS = 20
# Few enough that the survivor has a free slot (8 per process) for every job it takes over: the
# takeover test times the detection of a dead owner, not the queue behind it.
TAKEOVER_SUBMISSIONS = 8
WEB_ONLY_SUBMISSIONS = 4
INVOICES = [9001, 9002, 9011, 9012, 9021]  # small: a compile takes a fraction of a second


async def submit(drivers: list[SlackDriver], number: int) -> None:
    """One submission: the modal opened through one process, submitted through the other."""
    opener, submitter = drivers[number % 2], drivers[(number + 1) % 2]
    view = await opener.open_modal(PM)
    answer = await submitter.load_options(PM, view, DEMO_PROJECT)
    offered = invoice_options(answer)
    submitted = await submitter.submit(PM, view, DEMO_PROJECT, [offered[i] for i in INVOICES])
    assert submitted.status == 200, submitted


async def wait_for_jobs(done: int, within: float) -> list[Job]:
    """Wait until ``done`` jobs succeeded (tolerating a database that is restarting)."""

    async def succeeded() -> list[Job]:
        try:
            jobs = await Job.all().order_by("id")
        except Exception:
            return []  # the database is restarting
        assert not [job for job in jobs if job.status == JobStatus.FAILED], jobs
        return jobs if sum(job.status == JobStatus.SUCCEEDED for job in jobs) >= done else []

    return await eventually(succeeded, within, every=0.2, what=f"{done} jobs succeeded")


async def assert_exactly_once(
    fake: FakeSlack, jobs: list[Job], submissions: int = SUBMISSIONS
) -> None:
    """Every submission: one parent message, one file and one final reply in its thread."""
    assert len(jobs) == submissions
    assert all(job.status == JobStatus.SUCCEEDED for job in jobs), [j.error for j in jobs]
    parents = fake.top_level_messages()
    assert len(parents) == submissions
    steps = await SlackDelivery.filter(job_id__in=[job.id for job in jobs])
    assert {(p.channel, p.ts) for p in parents} == {(s.parent_channel, s.parent_ts) for s in steps}
    for parent in parents:
        assert len(fake.files_in_thread(parent.channel, parent.ts)) == 1, parent.ts
        assert len(fake.replies(parent.channel, parent.ts)) == 1, parent.ts
        assert ": done, " in parent.text
    assert sum(upload.completed for upload in fake.uploads.values()) == submissions


async def records_agree_with_slack(fake: FakeSlack) -> bool:
    """True when every parent message, completed upload and reply Slack holds is recorded on a
    job (no process is between a Slack call and the record of its step)."""
    steps = await SlackDelivery.all()
    return (
        len(fake.top_level_messages()) == sum(s.parent_ts is not None for s in steps)
        and sum(u.completed for u in fake.uploads.values())
        == sum(s.file_id is not None for s in steps)
        and sum(m.thread_ts is not None for m in fake.messages)
        == sum(s.final_reply_ts is not None for s in steps)
    )


async def held_by(serve: ServeProcess) -> list[Job]:
    return await Job.filter(
        status=JobStatus.RUNNING, lease_owner__contains=f":{serve.process.pid}:"
    ).all()


async def kill_while_holding_jobs(
    serves: list[ServeProcess], fake: FakeSlack
) -> tuple[ServeProcess, ServeProcess, list[int]]:
    """SIGKILL the process group of one of the two ``serves`` at a moment it holds jobs (the
    first that does, once two jobs succeeded, with every record in agreement with Slack);
    return the victim, the survivor and the ids of the jobs the victim held."""

    def resume() -> None:
        for serve in serves:
            serve.signal_group(signal.SIGCONT)

    async def kill_if_clean() -> tuple[ServeProcess, ServeProcess, list[int]] | None:
        holders = [serve for serve in serves if await held_by(serve)]
        if not holders or await Job.filter(status=JobStatus.SUCCEEDED).count() < 2:
            return None
        for serve in serves:
            serve.signal_group(signal.SIGSTOP)
        # These queries give the fake its turns to take in what the processes had sent.
        victim = holders[0]
        held = await held_by(victim)
        if not (held and await records_agree_with_slack(fake) and not fake.answering):
            resume()
            return None
        victim.signal_group(signal.SIGKILL)
        resume()
        await victim.process.wait()
        [survivor] = [serve for serve in serves if serve is not victim]
        return victim, survivor, [job.id for job in held]

    return await eventually(
        kill_if_clean, 120, every=0.02, what="a process holding a job at a clean moment"
    )


@pytest.mark.postgres
async def test_a_process_killed_mid_run_loses_nothing_and_posts_nothing_twice(
    fake_slack: FakeSlack,
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    env = serve_environment(pg_database, data_dir, fake_slack, lease=3)
    for name in ("a", "b"):
        serves.append(await start_serve(env, tmp_path / f"serve-{name}.log"))
    survivor, _ = await submit_and_kill_one(serves, fake_slack)
    assert survivor.process.returncode is None and "Traceback" not in survivor.log


async def submit_and_kill_one(
    serves: list[ServeProcess], fake_slack: FakeSlack
) -> tuple[ServeProcess, list[Job]]:
    """`SUBMISSIONS` submissions spread over both ``serves``; one is SIGKILLed while it
    holds jobs. Checks that its jobs were taken over and that every submission ended with exactly
    one parent, PDF and reply; returns the survivor and the finished jobs."""
    async with aiohttp.ClientSession() as session:
        for serve in serves:
            await serve.wait_healthy(session)
        drivers = [SlackDriver(session, s.url, SIGNING_SECRET, fake_slack) for s in serves]
        for number in range(SUBMISSIONS):
            await submit(drivers, number)
        _, survivor, killed_holding = await kill_while_holding_jobs(serves, fake_slack)
        jobs = await wait_for_jobs(SUBMISSIONS, within=JOB_PATIENCE)
    assert len(killed_holding) >= 1
    assert any(job.attempts >= 2 for job in jobs)  # taken over from the dead process
    await assert_exactly_once(fake_slack, jobs)
    return survivor, jobs


async def resumed_elsewhere(job_ids: list[int], survivor: ServeProcess, within: float) -> float:
    """Seconds until every job of ``job_ids`` is held by ``survivor`` or has ended."""
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def resumed() -> float:
        held = await Job.filter(id__in=job_ids).all()
        if all(
            job.status != JobStatus.RUNNING or f":{survivor.process.pid}:" in str(job.lease_owner)
            for job in held
        ):
            return max(loop.time() - started, 1e-9)
        return 0.0

    return await eventually(resumed, within, what=f"jobs {job_ids} resumed by the survivor")


@pytest.mark.postgres
async def test_a_killed_process_jobs_resume_elsewhere_in_seconds_not_a_lease(
    fake_slack: FakeSlack,
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    # A 60 s lease: only the dead owner's free advisory lock lets the survivor in sooner.
    env = serve_environment(pg_database, data_dir, fake_slack, lease=60)
    # The first uploads wait 2 s (Slack says: retry later; the process's other uploads wait
    # too), their jobs held with their records in agreement with Slack: a clean moment to kill
    # lasts, whatever the machine's speed. Three 429s: no call meets more than its 3 retries.
    fake_slack.rate_limit("files.getUploadURLExternal", retry_after=2, times=3)
    for name in ("a", "b"):
        serves.append(await start_serve(env, tmp_path / f"serve-{name}.log"))
    async with aiohttp.ClientSession() as session:
        for serve in serves:
            await serve.wait_healthy(session)
        drivers = [SlackDriver(session, s.url, SIGNING_SECRET, fake_slack) for s in serves]
        for number in range(TAKEOVER_SUBMISSIONS):
            await submit(drivers, number)
        _, survivor, killed_holding = await kill_while_holding_jobs(serves, fake_slack)
        # The target is 5 s; the deadline leaves room for a loaded machine, and is still far
        # below the 60 s lease that the old mechanism would have waited out.
        await resumed_elsewhere(killed_holding, survivor, within=20)
        jobs = await wait_for_jobs(TAKEOVER_SUBMISSIONS, within=JOB_PATIENCE)
    taken_over = [job for job in jobs if job.id in killed_holding]
    assert taken_over and all(job.attempts >= 2 for job in taken_over)
    await assert_exactly_once(fake_slack, jobs, TAKEOVER_SUBMISSIONS)
    assert survivor.process.returncode is None and "Traceback" not in survivor.log


@pytest.mark.postgres
async def test_a_database_restart_pauses_the_jobs_and_they_go_on(
    fake_slack: FakeSlack,
    private_pg: PrivatePostgres,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    database_url = f"{private_pg.url}/invoice_backups"
    await prepare_database(database_url, data_dir, tmp_path)
    # Leases longer than the outage: the jobs stay with their processes and resume there.
    env = serve_environment(database_url, data_dir, fake_slack, lease=30)
    for name in ("a", "b"):
        serves.append(await start_serve(env, tmp_path / f"serve-{name}.log"))
    async with aiohttp.ClientSession() as session:
        for serve in serves:
            await serve.wait_healthy(session)
        drivers = [SlackDriver(session, s.url, SIGNING_SECRET, fake_slack) for s in serves]
        for number in range(SUBMISSIONS):
            await submit(drivers, number)
        await wait_for_jobs(3, within=JOB_PATIENCE)
        await asyncio.to_thread(private_pg.stop)
        # Both processes keep working against a database that is gone, until each has met it.
        await eventually(
            lambda: all(noticed_the_outage(serve.log) for serve in serves),
            JOB_PATIENCE,
            what="both processes noticed the outage",
        )
        assert all(serve.process.returncode is None for serve in serves)
        async with session.get(f"{serves[0].url}/healthz") as health:
            assert health.status == 503
        await asyncio.to_thread(private_pg.start)
        jobs = await wait_for_jobs(SUBMISSIONS, within=JOB_PATIENCE)
        for serve in serves:
            await serve.wait_healthy(session)
    await assert_exactly_once(fake_slack, jobs)
    assert all(job.attempts == 1 for job in jobs)  # paused in place, never taken over
    logs = "".join(serve.log for serve in serves)
    assert " ERROR " not in logs and " CRITICAL " not in logs
    assert tracebacks_outside(logs, allowed_logger="asyncpg.pool") == []


def noticed_the_outage(log: str) -> bool:
    """True once a process logged a database error: a job paused, or a claim that failed."""
    return "paused: database error" in log or "cannot claim jobs" in log


def tracebacks_outside(log: str, allowed_logger: str) -> list[str]:
    """The log records followed by a traceback, except those of ``allowed_logger`` (asyncpg's
    pool logs its reconnection attempts with one)."""
    offenders: list[str] = []
    record = ""
    for line in log.splitlines():
        if line[:4].isdigit() and " " in line:  # "2026-… LEVEL logger: message"
            record = line
        elif line.startswith("Traceback") and f" {allowed_logger}: " not in record:
            offenders.append(record)
    return offenders


async def test_serve_refuses_an_unmigrated_database_with_one_line(
    fake_slack: FakeSlack, data_dir: Path, tmp_path: Path
) -> None:
    env = serve_environment(f"sqlite://{data_dir / 'empty.sqlite3'}", data_dir, fake_slack, 60)
    serve = await start_serve(env, tmp_path / "serve.log")
    assert await asyncio.wait_for(serve.process.wait(), 60) == 2
    assert serve.log.strip().splitlines() == [
        "invoice-backups serve: the database schema is empty: run `invoice-backups migrate`"
    ]


async def compiles_counted(session: aiohttp.ClientSession, serve: ServeProcess) -> float:
    """The compiles ``serve`` ran, from its ``/metrics`` (`bot.metrics.COMPILE_SECONDS`)."""
    async with session.get(f"{serve.url}/metrics") as response:
        return sample(await response.text(), "invoice_backups_compile_duration_seconds_count")


@pytest.mark.postgres
async def test_a_process_that_runs_no_jobs_answers_slack_and_another_runs_its_jobs(
    fake_slack: FakeSlack,
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    env = serve_environment(pg_database, data_dir, fake_slack, lease=30)
    serves.append(await start_serve({**env, "BACKUPS_RUN_JOBS": "false"}, tmp_path / "web.log"))
    serves.append(await start_serve(env, tmp_path / "jobs.log"))
    answering, running = serves
    async with aiohttp.ClientSession() as session:
        for serve in serves:
            await serve.wait_healthy(session)
        driver = SlackDriver(session, answering.url, SIGNING_SECRET, fake_slack)
        for number in range(WEB_ONLY_SUBMISSIONS):
            await submit([driver, driver], number)
        jobs = await wait_for_jobs(WEB_ONLY_SUBMISSIONS, within=JOB_PATIENCE)
        assert await compiles_counted(session, answering) == 0
        assert await compiles_counted(session, running) == WEB_ONLY_SUBMISSIONS
    await assert_exactly_once(fake_slack, jobs, WEB_ONLY_SUBMISSIONS)
    assert "jobs left to other processes (BACKUPS_RUN_JOBS=false)" in answering.log
    answering.signal_group(signal.SIGTERM)  # its never-started worker stops cleanly
    await stopped_cleanly(answering)
