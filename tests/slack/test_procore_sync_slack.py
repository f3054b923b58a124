"""Procore in the running bot, through the fake Slack and the fake Procore over real HTTP:
``/compile-backups sync`` (admins only; ephemeral at once, the result posted), the scheduled
sync (one job per period across processes), and compiling after a sync (fresh at compile time)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from pypdf import PdfReader

from bot.procore_sync_job import PROCORE_SYNC, enqueue_scheduled_sync
from bot.scheduler import ScheduleRegistry
from bot.server import PROCORE_SYNC_JOB_ID, BotServer
from storage import jobs
from storage.jobs import COMPILE_BACKUP, Enqueued, Job, JobStatus
from storage.models import Invoice, Project
from tests.procore.fake_procore import (
    FakeProcore,
    FakeProject,
    touch,
)
from tests.procore.fixtures import procore_settings
from tests.slack.conftest import (
    DEMO_PROJECT,
    PM,
    SIGNING_SECRET,
    VIEWER,
    bot_settings,
    finished_jobs,
    request_backup,
    running_bot,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver
from tests.slack.test_slack_digests import FakeClock
from tests.slack.test_slack_manage_access import open_home
from tests.waiting import eventually


@pytest.fixture
async def procore_bot(
    fake_slack: FakeSlack, demo_project: int, fake_procore: FakeProcore
) -> AsyncIterator[BotServer]:
    async with running_bot(
        bot_settings(fake_slack, procore=procore_settings(fake_procore)),
        worker_options={"poll_seconds": 0.2, "progress_interval": 0.2},
    ) as server:
        yield server


@pytest.fixture
async def procore_slack(
    procore_bot: BotServer, fake_slack: FakeSlack
) -> AsyncIterator[SlackDriver]:
    async with aiohttp.ClientSession() as session:
        yield SlackDriver(session, procore_bot.url, SIGNING_SECRET, fake_slack)


async def test_an_admin_syncs_a_project_now_and_a_viewer_may_not(
    procore_slack: SlackDriver, fake_slack: FakeSlack, fake_procore: FakeProcore
) -> None:
    requisition = fake_procore.world.projects[DEMO_PROJECT].requisitions[9001]
    requisition["invoice_number"] = "SYNCED-NOW-1"
    touch(requisition, offset_seconds=1)

    answer = await procore_slack.command(VIEWER, "sync 2026-014")
    assert answer.status == 200
    refusal = await fake_slack.wait_for(lambda: fake_slack.ephemerals)
    assert "Only a project admin" in refusal[-1]["text"]
    assert not await Job.filter(kind=PROCORE_SYNC).exists()

    answer = await procore_slack.command(PM, "sync 2026-014")
    assert answer.status == 200
    await fake_slack.wait_for(lambda: len(fake_slack.ephemerals) >= 2)
    assert "Syncing" in fake_slack.ephemerals[-1]["text"]
    [job] = [j for j in await finished_jobs(1) if j.kind == PROCORE_SYNC]
    assert job.status == JobStatus.SUCCEEDED, job.error
    posts = await fake_slack.wait_for(
        lambda: [
            c for c in fake_slack.calls_to("chat.postMessage") if "Procore sync" in str(c.args)
        ]
    )
    assert posts[0].args["channel"] == "C_JOBSITE"
    assert ": synced (full): " in posts[0].args["text"]
    project = await Project.get(id=DEMO_PROJECT)
    assert project.source == "procore" and project.synced_at is not None
    assert (await Invoice.get(id=9001)).invoice_number == "SYNCED-NOW-1"


async def fire_scheduled_sync(server: BotServer) -> None:
    """Run the server's scheduled Procore sync as APScheduler does each period (at the clock's
    time); returns once the sync is queued or joined."""
    assert server.scheduler is not None
    scheduled = server.scheduler.scheduled_job(PROCORE_SYNC_JOB_ID)
    assert scheduled is not None, "no scheduled Procore sync"
    await scheduled.func()


async def test_the_scheduled_sync_runs_once_per_period_across_processes(
    fake_slack: FakeSlack, demo_project: int, fake_procore: FakeProcore
) -> None:
    # The processes' clock (their schedulers'), in the middle of an hour: which period a fire
    # belongs to depends on this clock alone, never on the time at which the test runs.
    clock = FakeClock(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    servers = [
        BotServer(
            bot_settings(fake_slack, procore=procore_settings(fake_procore, sync_minutes=60)),
            worker_options={"poll_seconds": 0.2},
            scheduler_options={"clock": clock},
        )
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    try:
        await finished_jobs(1)  # the sync both processes queued as they started
        for server in servers:  # both fire again in the same period, after that sync ended
            await fire_scheduled_sync(server)
        syncs = await Job.filter(kind=PROCORE_SYNC)
        assert [sync.idempotency_key for sync in syncs] == ["procore-sync:2026-11-20T09:00Z"]
        assert syncs[0].status == JobStatus.SUCCEEDED, syncs[0].error
        assert (await Project.get(id=DEMO_PROJECT)).source == "procore"

        clock.now += timedelta(hours=1)  # the next period: one more sync across the processes
        for server in servers:
            await fire_scheduled_sync(server)
        await finished_jobs(2)
        syncs = await Job.filter(kind=PROCORE_SYNC).order_by("id")
        assert [sync.idempotency_key for sync in syncs] == [
            "procore-sync:2026-11-20T09:00Z",
            "procore-sync:2026-11-20T10:00Z",
        ]
        assert all(sync.status == JobStatus.SUCCEEDED for sync in syncs), [s.error for s in syncs]
    finally:
        for server in servers:
            await server.stop()


async def test_compiling_while_procore_is_down_says_so_in_the_slack_reply_and_cover(
    procore_slack: SlackDriver, fake_slack: FakeSlack, fake_procore: FakeProcore
) -> None:
    await procore_slack.command(PM, "sync 2026-014")
    [sync] = await finished_jobs(1)
    assert sync.status == JobStatus.SUCCEEDED, sync.error
    synced_at = (await Project.get(id=DEMO_PROJECT)).synced_at
    assert synced_at is not None
    fake_procore.inject("500", times=100_000)  # Procore down: every call fails

    await request_backup(procore_slack, PM, [9001, 9002])
    done = await finished_jobs(2)
    [job] = [j for j in done if j.kind == COMPILE_BACKUP]
    assert job.status == JobStatus.SUCCEEDED, job.error
    [parent] = [m for m in fake_slack.top_level_messages() if "Invoice backup of" in m.text]
    [reply] = fake_slack.replies(parent.channel, parent.ts)
    assert "Procore could not be reached" in reply.all_text
    assert "Procore data as of " in reply.all_text and "(the last sync)" in reply.all_text
    [upload] = fake_slack.files_in_thread(parent.channel, parent.ts)
    cover = PdfReader(io.BytesIO(upload.data or b"")).pages[0].extract_text() or ""
    assert "Procore data as of " in " ".join(cover.split())


async def test_syncs_never_overlap_across_processes(
    fake_slack: FakeSlack, demo_project: int, fake_procore: FakeProcore
) -> None:
    # Slow Procore down (a spike window of 4 calls a second) so each sync takes seconds.
    fake_procore.set_limits(spike=(4, 1.0))
    servers = [
        BotServer(
            bot_settings(fake_slack, procore=procore_settings(fake_procore)),
            worker_options={"poll_seconds": 0.1},
        )
        for _ in range(2)
    ]
    for server in servers:
        await server.start()
    most_running = 0
    watching = True

    async def watch() -> None:
        nonlocal most_running
        while watching:
            running = await Job.filter(kind=PROCORE_SYNC, status=JobStatus.RUNNING).count()
            most_running = max(most_running, running)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        for key in ("a", "b", "c"):
            await jobs.enqueue(
                f"procore-sync-now:{key}",
                {"project_ids": [DEMO_PROJECT], "full": True},
                kind=PROCORE_SYNC,
            )
        done = await finished_jobs(3)
        assert all(job.status == JobStatus.SUCCEEDED for job in done), [j.error for j in done]
        # Two processes claim syncs, yet never two at once.
        assert most_running == 1
    finally:
        watching = False
        await watcher
        for server in servers:
            await server.stop()


async def test_stopping_lets_a_scheduled_sync_being_queued_finish(database: str) -> None:
    """A period's fire still queueing its sync when the process stops is not cut short (nor
    logged as a traceback: the autouse ``bot_log`` checks): `stop` waits for it."""
    queueing, release = asyncio.Event(), asyncio.Event()
    queued: list[Enqueued] = []

    async def queue_sync(now: datetime) -> None:
        queueing.set()
        await release.wait()
        queued.append(await enqueue_scheduled_sync(now, 60))

    registry = ScheduleRegistry(clock=lambda: datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    registry.add_interval(PROCORE_SYNC_JOB_ID, queue_sync, minutes=60)
    await registry.start()
    await eventually(queueing.is_set, 10)  # APScheduler's first fire is under way
    stopping = asyncio.create_task(registry.stop())
    await asyncio.sleep(0)  # `stop` shuts APScheduler down (which cancels the jobs it runs)
    assert not stopping.done()
    release.set()
    await stopping
    [enqueued] = queued
    assert enqueued.created and enqueued.job.idempotency_key == "procore-sync:2026-11-20T09:00Z"


async def test_a_scheduled_sync_that_waits_coalesces_the_next_periods(database: str) -> None:
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    first = await enqueue_scheduled_sync(start, 15)
    claimed = await jobs.claim_next("w1", 30, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,))
    assert claimed is not None and claimed.id == first.job.id  # running past its period…
    second = await enqueue_scheduled_sync(start + timedelta(minutes=15), 15)
    assert second.created and second.job.id != first.job.id
    # …so the periods after it join the sync already waiting instead of piling up.
    third = await enqueue_scheduled_sync(start + timedelta(minutes=30), 15)
    fourth = await enqueue_scheduled_sync(start + timedelta(minutes=45), 15)
    assert not third.created and third.job.id == second.job.id == fourth.job.id
    assert await Job.filter(kind=PROCORE_SYNC).count() == 2
    assert await jobs.claim_next("w2", 30, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,)) is None


async def test_home_shows_sync_times_and_unreachable_projects_to_admins_only(
    procore_slack: SlackDriver, fake_slack: FakeSlack, fake_procore: FakeProcore
) -> None:
    fake_procore.world.add_project(
        FakeProject(id=77, name="Locked Yard", project_number="L-7", forbidden=True)
    )
    await procore_slack.command(PM, "sync")
    await finished_jobs(1)
    # The demo project is synced now; make the PM's project unreachable on the next sync.
    await sync_to_unreachable(fake_procore)
    await procore_slack.command(PM, "sync 2026-014")
    await finished_jobs(2)

    home = json.dumps(await open_home(procore_slack, PM))
    assert "synced from Procore" in home
    assert "Projects this app cannot reach in Procore" in home
    assert "Permitted Projects" in home
    viewer_home = json.dumps(await open_home(procore_slack, VIEWER))
    assert "cannot reach" not in viewer_home

    # The project select still lists the synced project (its data as last synced).
    view = await procore_slack.open_modal(PM)
    options = json.dumps(view)
    assert "2026-014" in options


async def sync_to_unreachable(fake: FakeProcore) -> None:
    fake.world.projects[DEMO_PROJECT].forbidden = True


async def test_a_sync_started_running_and_the_queued_syncs_never_overlap(database: str) -> None:
    """`storage.jobs.start_running` (the command line's sync) and a worker's exclusive claim
    obey one rule: never two sync jobs running at once."""
    queued = await jobs.enqueue("procore-sync-now:q", {"project_ids": None}, kind=PROCORE_SYNC)
    worker = await jobs.claim_next("w1", 30, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,))
    assert worker is not None and worker.id == queued.job.id
    assert (
        await jobs.start_running("cli:1", {}, kind=PROCORE_SYNC, owner="cli", lease_seconds=30)
        is None
    )
    assert not await Job.filter(idempotency_key="cli:1").exists()  # nothing left behind
    await jobs.finish(worker, "w1", JobStatus.SUCCEEDED)

    await jobs.enqueue("procore-sync-now:r", {"project_ids": None}, kind=PROCORE_SYNC)
    started = await asyncio.gather(
        *(
            jobs.start_running(f"cli:{n}", {}, kind=PROCORE_SYNC, owner=f"cli{n}", lease_seconds=30)
            for n in range(2, 8)
        )
    )
    [mine] = [job for job in started if job is not None]
    assert mine.status == JobStatus.RUNNING and mine.lease_owner is not None
    # While the command line's job runs, no worker claims the queued sync.
    assert await jobs.claim_next("w2", 30, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,)) is None
    await jobs.finish(mine, str(mine.lease_owner), JobStatus.SUCCEEDED)
    assert await jobs.claim_next("w2", 30, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,))


async def test_a_bot_takes_over_a_dead_command_line_sync_and_syncs_only_its_projects(
    procore_bot: BotServer, fake_procore: FakeProcore
) -> None:
    fake_procore.world.add_project(FakeProject(id=4242, name="Other", project_number="O-1"))
    # A command-line sync that died at once: its lease has already run out.
    job = await jobs.start_running(
        "procore-sync-cli:dead",
        {"project_ids": None, "project_numbers": ["2026-014"], "full": False},
        kind=PROCORE_SYNC,
        owner="cli:gone",
        lease_seconds=0,
    )
    assert job is not None
    [done] = await finished_jobs(1)
    assert done.id == job.id and done.status == JobStatus.SUCCEEDED, done.error
    assert done.lease_owner is None and done.attempts == 2
    assert "(2026-014): synced" in str(done.error) and "O-1" not in str(done.error)
    assert (await Project.get(id=DEMO_PROJECT)).source == "procore"
    assert not await Project.filter(id=4242).exists()
