"""The bot with its files in a real S3 server (SeaweedFS): the server going away in the middle of
a compile pauses the job, `/healthz` says so, and once the store is back the job ends with
exactly one PDF in its thread, streamed from the store."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pypdf import PdfReader

from bot.server import BotServer
from commands.compile_backups import CompileResult, compile_backup
from commands.demo import write_demo_bundle
from commands.import_bundle import import_bundle
from storage.blobs import S3BlobStore
from storage.jobs import Job, JobStatus
from tests.conftest import s3_store
from tests.s3_server import S3Server
from tests.slack.conftest import (
    PM,
    SIGNING_SECRET,
    bot_settings,
    finished_jobs,
    request_backup,
)
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver
from tests.waiting import JOB_PATIENCE, eventually


@pytest.fixture
async def s3_demo(database: str, s3_server: S3Server, tmp_path: Path) -> S3BlobStore:
    """The demo project imported with its files in a fresh S3 bucket."""
    store = s3_store(s3_server, tmp_path / "cache")
    await import_bundle(write_demo_bundle(tmp_path / "bundle"), store)
    return store


@pytest.fixture
async def running() -> AsyncIterator[list[BotServer]]:
    servers: list[BotServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def health(session: aiohttp.ClientSession, server: BotServer) -> tuple[int, dict]:
    async with session.get(f"{server.url}/healthz") as response:
        return response.status, await response.json()


def paused(caplog: pytest.LogCaptureFixture) -> bool:
    """True once the worker logged that a job paused on the object store."""
    return any("paused: object store error" in record.getMessage() for record in caplog.records)


async def test_the_store_going_away_mid_compile_pauses_the_job_until_it_is_back(
    fake_slack: FakeSlack,
    s3_demo: S3BlobStore,
    s3_server: S3Server,
    running: list[BotServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.worker")
    store_down = asyncio.Event()
    calls: list[str] = []

    async def compile_while_the_store_goes(*args: Any, **kwargs: Any) -> CompileResult:
        """The real compile; on the first call the S3 server stops once the PDF is being made
        (so staging worked and storing the PDF cannot)."""
        calls.append("compile")
        relay = kwargs["progress"]

        async def progress(note: str) -> None:
            if len(calls) == 1 and not store_down.is_set() and note.startswith("preparing"):
                await asyncio.to_thread(s3_server.stop)
                store_down.set()
            await relay(note)

        return await compile_backup(*args, **{**kwargs, "progress": progress})

    server = BotServer(
        bot_settings(fake_slack),
        blob_store=s3_demo,
        compile_function=compile_while_the_store_goes,  # type: ignore[arg-type]
        worker_options={"poll_seconds": 0.2},
    )
    running.append(server)
    await server.start()
    async with aiohttp.ClientSession() as session:
        await request_backup(
            SlackDriver(session, server.url, SIGNING_SECRET, fake_slack), PM, [9001, 9002]
        )
        await asyncio.wait_for(store_down.wait(), JOB_PATIENCE)
        try:
            status, body = await health(session, server)
            assert status == 503 and body["store"] == "unavailable" and body["database"] == "ok"
            # The job pauses, neither failed nor answered, while the store is away.
            await eventually(lambda: paused(caplog), JOB_PATIENCE, what="the job paused")
            [waiting] = await Job.all()
            assert waiting.status == JobStatus.RUNNING
            [parent] = fake_slack.top_level_messages()
            assert fake_slack.replies(parent.channel, parent.ts) == []
        finally:
            await asyncio.to_thread(s3_server.start)
        [job] = await finished_jobs(1)
        status, body = await health(session, server)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1  # paused and resumed in place, not claimed again
    assert len(calls) == 2  # compiled again once the store answered
    assert status == 200 and body["store"] == "ok"
    [parent] = fake_slack.top_level_messages()
    [upload] = fake_slack.files_in_thread(parent.channel, parent.ts)
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1
    assert upload.data is not None and len(PdfReader(io.BytesIO(upload.data)).pages) > 2
