"""Start-up, shutdown and resumption: settings errors, SIGTERM, jobs that outlive a worker."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from tortoise import timezone

from bot.backup_job import BackupJobPayload, enqueue_backup
from bot.server import BotServer
from commands.access import Requester
from commands.compile_backups import CompileResult, compile_backup
from storage import jobs, slack_deliveries
from storage.jobs import Job, JobStatus
from storage.slack_deliveries import SlackDelivery, delivery_of
from tests.slack.conftest import (
    BOT_TOKEN,
    DEMO_PROJECT,
    PM,
    SIGNING_SECRET,
    bot_settings,
    finished_jobs,
    request_backup,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.serve_process import serving_port
from tests.slack.slack_driver import SlackDriver
from tests.waiting import JOB_PATIENCE, eventually

REPO = Path(__file__).resolve().parents[2]
RUN_SERVE = "import sys; from bot.server import run_serve; sys.exit(run_serve())"


def pm_payload(invoice_ids: tuple[int, ...] = (9001,)) -> BackupJobPayload:
    return BackupJobPayload(
        channel_id="C_JOBSITE",
        user_id=PM,
        project_id=DEMO_PROJECT,
        project_label="Riverside Medical Office Building (2026-014)",
        invoice_ids=invoice_ids,
        requester=Requester("slack:U0PM", "pm@example.com", "Dana", PM),
        timezone="America/New_York",
    )


async def expire_lease(job_id: int) -> None:
    await Job.filter(id=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


async def test_a_job_whose_worker_died_after_posting_resumes_without_posting_twice(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    await enqueue_backup("crash-after-parent", pm_payload())
    job = await jobs.claim_next("worker-that-dies", 30)
    assert job is not None
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    posted = await client.chat_postMessage(channel="C_JOBSITE", text="Compiling…")
    await slack_deliveries.record_parent_message(
        job, "worker-that-dies", await delivery_of(job), "C_JOBSITE", posted["ts"], None
    )
    await expire_lease(job.id)

    server = BotServer(bot_settings(fake_slack), worker_options={"poll_seconds": 0.2})
    await server.start()
    try:
        [done] = await finished_jobs(1)
        assert done.status == JobStatus.SUCCEEDED and done.attempts == 2
        [parent] = fake_slack.top_level_messages()
        assert parent.ts == posted["ts"] and ": done, " in parent.text  # updated, not re-posted
        assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1

        # Now pretend it died again right after the upload, before its final reply.
        reply = fake_slack.replies(parent.channel, parent.ts)[0]
        fake_slack.messages.remove(reply)
        await Job.filter(id=done.id).update(
            status=JobStatus.RUNNING, lease_owner="another-dead-worker"
        )
        await SlackDelivery.filter(job_id=done.id).update(final_reply_ts=None)
        await expire_lease(done.id)
        server.worker.wake()  # type: ignore[union-attr]
        await fake_slack.wait_for(lambda: fake_slack.replies(parent.channel, parent.ts))
        [again] = await finished_jobs(1)
        assert again.status == JobStatus.SUCCEEDED
        assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1  # no second upload
        assert len(fake_slack.replies(parent.channel, parent.ts)) == 1
        assert len(fake_slack.top_level_messages()) == 1
    finally:
        await server.stop()


async def test_shutdown_puts_a_running_job_back_and_the_next_start_finishes_it(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    started = asyncio.Event()

    async def compile_that_hangs(*args: Any, **kwargs: Any) -> CompileResult:
        started.set()
        await asyncio.Event().wait()  # until cancelled by the shutdown
        raise AssertionError("unreachable")

    first = BotServer(
        bot_settings(fake_slack, shutdown_grace_seconds=0.2),
        compile_function=compile_that_hangs,
        worker_options={"poll_seconds": 0.2},
    )
    await first.start()
    async with aiohttp.ClientSession() as session:
        await request_backup(
            SlackDriver(session, first.url, SIGNING_SECRET, fake_slack), PM, [9001]
        )
    await asyncio.wait_for(started.wait(), JOB_PATIENCE)
    await first.stop()
    [job] = await Job.all()
    assert job.status == JobStatus.QUEUED and job.lease_owner is None
    parent_ts = (await delivery_of(job)).parent_ts
    assert parent_ts is not None and job.attempts == 0  # a release is not a failed attempt

    second = BotServer(
        bot_settings(fake_slack),
        compile_function=compile_backup,
        worker_options={"poll_seconds": 0.2},
    )
    await second.start()
    try:
        [done] = await finished_jobs(1)
        assert done.status == JobStatus.SUCCEEDED, done.error
        [parent] = fake_slack.top_level_messages()
        assert parent.ts == parent_ts
        assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    finally:
        await second.stop()


def _environment(**values: str) -> dict[str, str]:
    keep = {"PATH", "HOME", "LANG", "TMPDIR"}
    env = {name: value for name, value in os.environ.items() if name in keep}
    env["PYTHONPATH"] = str(REPO)
    env.update(values)
    return env


async def _run_serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_SERVE,
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "SLACK_BOT_TOKEN"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET"),
        ({"PORT": "eighty"}, "PORT"),
        ({"BACKUPS_WORKERS": "0"}, "BACKUPS_WORKERS"),
        ({"SLACK_API_URL": "slack.test/api"}, "SLACK_API_URL"),
        ({"SLACK_APP_TOKEN": "xoxb-not-an-app-token"}, "SLACK_APP_TOKEN"),
        ({"DATABASE_URL": "nosuchdb://x"}, "DATABASE_URL"),
    ],
)
async def test_a_bad_setting_stops_start_up_with_one_line_naming_it(
    tmp_path: Path, overrides: dict[str, str], variable: str
) -> None:
    env = _environment(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        BACKUPS_DATA_DIR=str(tmp_path),
        PORT="1",
    )
    env.update(overrides)
    process = await _run_serve(env)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2, stderr.decode()
    assert len(lines) == 1 and variable in lines[0] and "Traceback" not in lines[0]


async def _read_until_serving(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """Read the process's stderr up to the line naming its port (PORT=0: the OS chose it); return
    the port and the text read."""
    assert process.stderr is not None
    head = ""
    while (port := serving_port(head)) is None:
        line = await process.stderr.readline()
        if not line:
            raise AssertionError(f"serve ended before serving:\n{head}")
        head += line.decode()
    return port, head


async def test_serve_runs_until_sigterm_then_shuts_down_cleanly(
    fake_slack: FakeSlack, database: str, data_dir: Path
) -> None:
    process = await _run_serve(
        _environment(
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake_slack.api_url,
            DATABASE_URL=database,
            BACKUPS_DATA_DIR=str(data_dir),
            HOST="127.0.0.1",
            PORT="0",
            PYTHONWARNINGS="always",
            PYTHONASYNCIODEBUG="1",
        )
    )
    try:
        port, head = await asyncio.wait_for(_read_until_serving(process), 60)
        async with aiohttp.ClientSession() as session:
            health = await _wait_healthy(session, f"http://127.0.0.1:{port}/healthz")
            assert health["status"] == "ok" and health["mode"] == "http"
            slack = SlackDriver(session, f"http://127.0.0.1:{port}", SIGNING_SECRET, fake_slack)
            assert (await slack.command(PM, "help")).status == 200
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = head + stderr.decode()
    assert process.returncode == 0, log
    assert "invoice-backups bot stopped" in log
    assert "Unclosed" not in log and "Traceback" not in log and "was never awaited" not in log
    assert warnings_in(log) == []


SLOW_CALLBACK = re.compile(r" WARNING asyncio: Executing .* took \d+\.\d+ seconds$")


def warnings_in(log: str) -> list[str]:
    """The WARNING records of ``log``, except the slow-callback notes of asyncio's debug mode
    ("Executing <Task …> took 0.150 seconds").

    Those notes time each callback by the wall clock (``loop.time()``), so they measure the
    machine as much as the bot. Timed per callback (wall and CPU time) on this test, the only
    steps over 20 ms were start-up ones, before the server listens (nothing else waits on the
    loop then): ``Tortoise.init`` building the models and importing the database driver, the
    first pool connection, then the first request's handler; 2 to 20 ms of CPU each, and 60 to
    90 ms of wall clock at a load of 8 on 2 cores (3 to 5 times the CPU time: the process waits
    for a core; debug mode adds a stack capture per future). None of it can leave the loop
    (tortoise binds its connections to it), and none is CPU-heavy; what this test decides is
    errors, tracebacks, unclosed resources and coroutines never awaited, not speed."""
    return [
        line for line in log.splitlines() if "WARNING" in line and not SLOW_CALLBACK.search(line)
    ]


async def _wait_healthy(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async def health() -> dict[str, Any] | None:
        try:
            async with session.get(url) as response:
                return dict(await response.json()) if response.status == 200 else None
        except aiohttp.ClientConnectionError:
            return None  # not listening yet

    return await eventually(health, 60, every=0.1, what=f"{url} healthy")


async def test_socket_mode_feeds_the_same_listeners(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    settings = bot_settings(fake_slack, app_token="xapp-1-test", signing_secret="")
    server = BotServer(settings, worker_options={"poll_seconds": 0.2})
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/healthz") as health:
                assert (await health.json())["mode"] == "socket"
            async with session.post(f"{server.url}/slack/events", data="x") as events:
                assert events.status == 404  # no HTTP endpoint without a signing secret
        help_ack = await fake_slack.send_envelope(
            "slash_commands",
            {"command": "/compile-backups", "text": "help", "user_id": PM, "channel_id": "C1"},
        )
        assert "/compile-backups help" in help_ack["payload"]["text"]
        await fake_slack.send_envelope(
            "slash_commands",
            {
                "command": "/compile-backups",
                "text": "",
                "user_id": PM,
                "channel_id": "C1",
                "team_id": "T0001",
                "trigger_id": "trigger.socket",
                "response_url": fake_slack.response_url("socket"),
            },
        )
        await fake_slack.wait_for(lambda: fake_slack.calls_to("views.open"))
    finally:
        await server.stop()
    # The connection was closed on shutdown (the fake drops it once it has seen the close).
    await fake_slack.wait_for(lambda: not fake_slack.sockets)


async def test_a_job_that_keeps_crashing_is_given_up_with_a_message(
    fake_slack: FakeSlack, demo_project: int
) -> None:
    await enqueue_backup("crash-loop", pm_payload())
    job = await jobs.claim_next("crashed", 30)
    assert job is not None
    client = AsyncWebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    posted = await client.chat_postMessage(channel="C_JOBSITE", text="Compiling…")
    await slack_deliveries.record_parent_message(
        job, "crashed", await delivery_of(job), "C_JOBSITE", posted["ts"], None
    )
    await Job.filter(id=job.id).update(attempts=3)  # three runs died already
    await expire_lease(job.id)
    server = BotServer(bot_settings(fake_slack), worker_options={"poll_seconds": 0.2})
    await server.start()
    try:
        [done] = await finished_jobs(1)
    finally:
        await server.stop()
    assert done.status == JobStatus.FAILED and done.attempts == 4
    [reply] = fake_slack.replies("C_JOBSITE", posted["ts"])
    assert "failed 3 times in a row" in reply.text
    assert not fake_slack.uploads
