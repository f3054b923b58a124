"""A job under a failing database pauses and carries on from its last recorded step, never
posting twice (bot/worker.py); on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from tortoise.exceptions import DBConnectionError

from bot.server import BotServer
from commands.compile_backups import CompileResult, compile_backup
from storage import slack_deliveries
from storage.jobs import JobStatus
from tests.slack.conftest import PM, SIGNING_SECRET, bot_settings, finished_jobs, request_backup
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import SlackDriver


def failing_first(times: int, real: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """``real``, except that its first ``times`` calls raise a database error."""
    calls = {"count": 0}

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["count"] += 1
        if calls["count"] <= times:
            raise DBConnectionError("connection was closed in the middle of operation")
        return await real(*args, **kwargs)

    return flaky


@pytest.fixture
async def started() -> AsyncIterator[list[BotServer]]:
    servers: list[BotServer] = []
    yield servers
    for server in servers:
        await server.stop()


async def run_one_backup(fake_slack: FakeSlack, server: BotServer) -> None:
    await server.start()
    async with aiohttp.ClientSession() as session:
        slack = SlackDriver(session, server.url, SIGNING_SECRET, fake_slack)
        await request_backup(slack, PM, [9001])


def assert_one_of_each(fake_slack: FakeSlack) -> None:
    [parent] = fake_slack.top_level_messages()
    assert len(fake_slack.files_in_thread(parent.channel, parent.ts)) == 1
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1
    assert len(fake_slack.calls_to("files.getUploadURLExternal")) == 1
    assert ": done, " in parent.text


async def test_a_database_error_while_compiling_pauses_the_job_then_it_goes_on(
    fake_slack: FakeSlack, demo_project: int, started: list[BotServer]
) -> None:
    compile_twice_broken: Callable[..., Awaitable[CompileResult]] = failing_first(2, compile_backup)
    server = BotServer(
        bot_settings(fake_slack),
        compile_function=compile_twice_broken,  # type: ignore[arg-type]
        worker_options={"poll_seconds": 0.2},
    )
    started.append(server)
    await run_one_backup(fake_slack, server)
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.attempts == 1  # paused and resumed in place, not claimed again
    assert_one_of_each(fake_slack)


async def test_a_step_done_in_slack_is_recorded_once_the_database_is_back(
    fake_slack: FakeSlack,
    demo_project: int,
    started: list[BotServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorders = slack_deliveries
    monkeypatch.setattr(recorders, "record_upload", failing_first(3, recorders.record_upload))
    monkeypatch.setattr(
        recorders, "record_final_reply", failing_first(1, recorders.record_final_reply)
    )
    server = BotServer(bot_settings(fake_slack), worker_options={"poll_seconds": 0.2})
    started.append(server)
    await run_one_backup(fake_slack, server)
    [job] = await finished_jobs(1)
    assert job.status == JobStatus.SUCCEEDED, job.error
    steps = await slack_deliveries.delivery_of(job)
    assert steps.file_id is not None and steps.final_reply_ts is not None
    assert_one_of_each(fake_slack)  # the upload and the reply were not done again
