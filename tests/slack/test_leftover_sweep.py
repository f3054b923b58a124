"""The leftover sweep in the running bot: a real ``serve`` process started after another one was
killed removes the killed compile's workspace at start-up, keeps the one a live job may be
compiling, logs one line and counts it in /metrics; a sweep that fails is one warning line."""

from __future__ import annotations

import logging
import signal
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest

from bot import metrics
from bot.server import BotServer
from storage.blobs import LocalBlobStore
from storage.jobs import Job, JobStatus
from tests.leftovers import KILLED_AGO, age, compile_in_progress, compile_job
from tests.slack.conftest import DEMO_PROJECT, bot_settings
from tests.slack.fake_slack import FakeSlack
from tests.slack.serve_process import (
    ServeProcess,
    prepare_database,
    serve_environment,
    start_serve,
)
from tests.slack.test_observability import sample
from tests.waiting import eventually


@pytest.mark.postgres
async def test_a_process_started_after_a_kill_sweeps_the_killed_compiles_workspace(
    pg_database: str,
    data_dir: Path,
    tmp_path: Path,
    fake_slack: FakeSlack,
    serves: list[ServeProcess],
) -> None:
    await prepare_database(pg_database, data_dir, tmp_path)
    env = serve_environment(pg_database, data_dir, fake_slack, lease=60)
    killed = await start_serve(env, tmp_path / "killed.log")
    serves.append(killed)
    async with aiohttp.ClientSession() as session:
        await killed.wait_healthy(session)
    killed.signal_group(signal.SIGKILL)
    await killed.process.wait()
    # What its compile left, an hour before a compile on another host started (both longer ago
    # than the sweep's quiet time); its job was taken over and finished by another process since.
    killed_ago = KILLED_AGO + timedelta(hours=1)
    job = await compile_job(
        -killed_ago, killed_ago + timedelta(minutes=1), owner=f"host:{killed.process.pid}:0"
    )
    await Job.filter(id=job.id).update(status=JobStatus.SUCCEEDED, lease_expires_at=None)
    _, left_by_the_kill = await compile_in_progress(data_dir, DEMO_PROJECT, killed_ago)
    # The compile on another host, quiet as long, whose job holds a live lease.
    await compile_job(timedelta(hours=1), KILLED_AGO + timedelta(minutes=1), owner="host-b:7:1")
    _, still_compiling = await compile_in_progress(data_dir, DEMO_PROJECT, KILLED_AGO)

    survivor = await start_serve(env, tmp_path / "survivor.log")
    serves.append(survivor)
    async with aiohttp.ClientSession() as session:
        await survivor.wait_healthy(session)
        await eventually(
            lambda: not left_by_the_kill.exists(), 30, what="the killed compile's workspace swept"
        )
        async with session.get(f"{survivor.url}/metrics") as response:
            exposition = await response.text()

    assert still_compiling.is_dir()
    assert "leftover sweep: removed 1 compile workspace and 0 partial files" in survivor.log
    assert "kept 1 quiet while a job that may own them runs" in survivor.log
    assert "Traceback" not in survivor.log
    assert sample(exposition, "invoice_backups_leftovers_removed_total", kind="workspace") == 1
    assert sample(exposition, "invoice_backups_leftover_bytes_removed_total") > 100_000


async def test_a_failed_sweep_is_one_warning_and_a_count(
    fake_slack: FakeSlack, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    quiet = data_dir / "backups" / "5-0badf00d"  # a killed compile's: its row is to be read
    quiet.mkdir(parents=True)
    age(quiet, KILLED_AGO)
    server = BotServer(bot_settings(fake_slack), blob_store=LocalBlobStore(data_dir))
    before = metrics.LEFTOVER_SWEEP_FAILURES._value.get()  # noqa: SLF001

    with caplog.at_level(logging.INFO, logger="bot.server"):
        await server._sweep_leftovers(None)  # type: ignore[arg-type]  # noqa: SLF001 - no database

    lines = [r for r in caplog.records if r.name == "bot.server"]
    assert [(r.levelname, r.exc_info) for r in lines] == [("WARNING", None)]
    assert lines[0].getMessage().startswith("leftover sweep failed (next try in 60 minutes): ")
    assert metrics.LEFTOVER_SWEEP_FAILURES._value.get() == before + 1  # noqa: SLF001
    assert quiet.is_dir()
