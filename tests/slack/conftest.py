"""Slack test fixtures: demo data, the fake Slack, the running bot, a signed-request driver.

The bot runs for real (its aiohttp server on a free port, the worker, the process pool) in the
test's event loop, pointed at the fake Slack through SLACK_API_URL; nothing in Bolt or slack_sdk
is patched. `database` (from tests/conftest.py) makes every test run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.server import BotServer
from bot.settings import Settings
from commands.demo import PROJECT_ID, USERS
from commands.import_bundle import import_bundle
from sources.bundle_writer import BundleData, write_bundle_folder
from storage.blobs import LocalBlobStore
from storage.jobs import Job, JobStatus
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_driver import Answer, SlackDriver, flatten_options, invoice_options
from tests.waiting import JOB_PATIENCE, eventually

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-0000-test-token"

PM = "U0PM"  # pm@example.com: Admin on the demo project's Commitments tool
VIEWER = "U0VIEWER"  # viewer@example.com: read-only
STRANGER = "U0STRANGER"  # not a project user at all
DEMO_PROJECT = PROJECT_ID
HARBOR = 2002  # a second project, alphabetically first: the PM is admin, Ola Berg standard


class _BotLog(logging.Handler):
    """Every log record of a test, as logged (before any scrubbing a handler might do)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.tracebacks: list[str] = []

    # asyncpg's pool logs its reconnection attempts (a deliberate database restart) with one
    QUIET_TRACEBACKS = ("asyncpg.pool",)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.name not in self.QUIET_TRACEBACKS:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self.tracebacks.append(f"{record.name}: {record.getMessage()}")
        elif "Traceback (most recent call last)" in text:
            self.tracebacks.append(f"{record.name}: {record.getMessage()}")
        self.lines.append(text)


@pytest.fixture(autouse=True)
def bot_log(request: pytest.FixtureRequest) -> Iterator[_BotLog]:
    """Every Slack test ends with no traceback in the bot's log (unless marked
    ``expected_traceback``: it provokes a bug on purpose) and no token or secret in it (the
    fake Slack's bot token and signing secret)."""
    handler = _BotLog()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO))
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    text = "\n".join(handler.lines)
    leaked = [secret for secret in (BOT_TOKEN, SIGNING_SECRET, "xoxb-", "xapp-") if secret in text]
    assert not leaked, f"the bot logged a credential: {leaked}"
    if request.node.get_closest_marker("expected_traceback") is None:
        assert not handler.tracebacks, "tracebacks in the bot's log:\n" + "\n".join(
            handler.tracebacks
        )


@pytest.fixture
async def demo_project(database: str, data_dir: Path, demo_bundle: Path) -> int:
    """The demo bundle imported into the test database; returns the project id."""
    await import_bundle(demo_bundle, LocalBlobStore(data_dir))
    return DEMO_PROJECT


@pytest.fixture
async def harbor(demo_project: int, data_dir: Path, tmp_path: Path) -> int:
    """A second project with no invoices, where pm@example.com is admin."""
    users = [
        USERS[0],  # Dana Reyes, pm@example.com: admin
        {
            "id": 77,
            "name": "Ola Berg",
            "email_address": "ola@example.com",
            "is_active": True,
            "vendor": None,
            "commitments_access": "standard",
        },
    ]
    folder = write_bundle_folder(
        tmp_path / "harbor",
        BundleData(
            project={
                "id": HARBOR,
                "name": "Harbor Logistics Center",
                "project_number": "2026-020",
                "company": {"id": 11, "name": "Northwind Builders, Inc."},
            },
            billing_periods=[],
            commitments=[],
            users=users,
            requisitions=[],
        ),
        indent=None,
    )
    await import_bundle(folder, LocalBlobStore(data_dir))
    return HARBOR


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    """A running fake Slack Web API with three workspace members."""
    fake = FakeSlack()
    fake.add_user(PM, "pm@example.com", "Dana Reyes")
    fake.add_user(VIEWER, "viewer@example.com", "Lee Park")
    fake.add_user(STRANGER, "stranger@example.com", "Robin Doe")
    fake.set_channel_members("C_JOBSITE", [PM])  # the PM's own channel; others hold everyone
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()


def bot_settings(fake: FakeSlack, **overrides: object) -> Settings:
    """Settings of a bot on a free local port, talking to ``fake``."""
    values: dict[str, object] = {
        "bot_token": BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "api_url": fake.api_url,
        "host": "127.0.0.1",
        "port": 0,
        "workers": 1,
        "shutdown_grace_seconds": 10.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_bot(settings: Settings, **options: Any) -> AsyncIterator[BotServer]:
    """A `BotServer` on ``settings`` (``options`` as for its constructor), started on entry and
    stopped on exit."""
    server = BotServer(settings, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def bot(fake_slack: FakeSlack, demo_project: int) -> AsyncIterator[BotServer]:
    """The bot, serving HTTP on a free port, its worker polling often."""
    async with running_bot(
        bot_settings(fake_slack), worker_options={"poll_seconds": 0.2, "progress_interval": 0.2}
    ) as server:
        yield server


@pytest.fixture
async def slack(bot: BotServer, fake_slack: FakeSlack) -> AsyncIterator[SlackDriver]:
    """Sends signed Slack requests to the bot."""
    async with aiohttp.ClientSession() as session:
        yield SlackDriver(session, bot.url, SIGNING_SECRET, fake_slack)


async def finished_jobs(count: int, within: float = JOB_PATIENCE) -> list[Job]:
    """Wait until ``count`` jobs have ended (succeeded or failed); return all jobs."""

    async def ended() -> list[Job]:
        jobs = await Job.all().order_by("id")
        done = [j for j in jobs if j.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)]
        return jobs if len(done) >= count else []

    return await eventually(ended, within, every=0.1, what=f"{count} jobs ended")


async def offered_options(
    slack: SlackDriver, user_id: str, view: dict, project_id: int = DEMO_PROJECT
) -> dict[int, dict]:
    """Invoice id → option, for every invoice the options load offers (empty query); the
    "All N invoices of <period>" options are left out (`whole_period_options` has them)."""
    answer = await slack.load_options(user_id, view, project_id)
    assert answer.status == 200, answer
    return invoice_options(answer)


async def whole_period_options(
    slack: SlackDriver, user_id: str, view: dict, project_id: int = DEMO_PROJECT
) -> dict[str, dict]:
    """Label → option of each "All N invoices of <period>" option (empty query)."""
    answer = await slack.load_options(user_id, view, project_id)
    assert answer.status == 200, answer
    return {
        option["text"]["text"]: option
        for option in flatten_options(answer)
        if option["value"].startswith("period:")
    }


async def request_backup(
    slack: SlackDriver,
    user_id: str,
    invoice_ids: list[int],
    channel_id: str = "C_JOBSITE",
    project_id: int = DEMO_PROJECT,
) -> Answer:
    """The whole user journey: command → modal → options → choose ``invoice_ids`` → Compile."""
    view = await slack.open_modal(user_id, channel_id=channel_id)
    offered = await offered_options(slack, user_id, view, project_id)
    chosen = [offered[invoice_id] for invoice_id in invoice_ids]
    return await slack.submit(user_id, view, project_id, chosen)
