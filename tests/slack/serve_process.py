"""Real ``invoice-backups serve`` processes for the tests that stop, kill or scale them
(`tests/slack/test_multiprocess.py`, `tests/slack/test_stop_signals.py`) and for the benches
(`bench/serve_process.py`): the process environment, one serve subprocess in its own process
group logging to a file, and the fixtures that clean up after them (a pytest plugin, listed in
``tests/conftest.py``).

A serve process listens on ``PORT=0``: the OS gives it a free port, which it names in a log line
once bound (`serving_port`). Choosing a free port here and passing it on would race: another process
can take the port between the choice and the bind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from commands.demo import write_demo_bundle
from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore
from storage.db import close_database, open_database
from tests.conftest import PG_SERVER, create_postgres_database, drop_postgres_database
from tests.slack.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.slack.fake_slack import FakeSlack
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
RUN_SERVE = "import sys; from bot.cli import main; sys.exit(main(['serve']))"
PASSED_ENVIRONMENT = ("PATH", "HOME", "LANG", "TMPDIR")
LOG_LINES_SHOWN = 60  # of each serve log, after a failing test
LISTENING_LINE = re.compile(r"invoice-backups bot listening on http://\S+:(\d+)\b")


def serving_port(log: str) -> int | None:
    """The port a serve process listens on, from its INFO line ``invoice-backups bot listening on
    http://HOST:PORT`` in ``log`` (logged once bound); None before that line."""
    found = LISTENING_LINE.search(log)
    return int(found[1]) if found else None


def process_environment(
    slack_api_url: str,
    database_url: str,
    data_dir: Path,
    *,
    bot_token: str,
    signing_secret: str,
    **settings: str,
) -> dict[str, str]:
    """The environment of a serve process on 127.0.0.1: PATH, HOME, LANG and TMPDIR passed on,
    the Slack credentials and API URL, the database and the data dir; `settings` are extra
    variables (they win)."""
    return {
        **{name: value for name, value in os.environ.items() if name in PASSED_ENVIRONMENT},
        "PYTHONPATH": str(REPO),
        "SLACK_BOT_TOKEN": bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack_api_url,
        "DATABASE_URL": database_url,
        "BACKUPS_DATA_DIR": str(data_dir),
        "HOST": "127.0.0.1",
        **settings,
    }


def serve_environment(database_url: str, data_dir: Path, fake: FakeSlack, lease: float) -> dict:
    """The test bot's environment, talking to ``fake``: one PDF worker, a lease of
    ``lease`` seconds, a short poll, INFO logs; ``data_dir`` is the volume all processes share."""
    return process_environment(
        fake.api_url,
        database_url,
        data_dir,
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        BACKUPS_WORKERS="1",
        BACKUPS_JOB_LEASE_SECONDS=str(lease),
        BACKUPS_JOB_POLL_SECONDS="0.2",
        LOG_LEVEL="INFO",
    )


@dataclass
class ServeProcess:
    """One ``invoice-backups serve`` subprocess, in its own process group, logging to a file;
    its ``port`` is known once `wait_healthy` returned."""

    process: asyncio.subprocess.Process
    log_path: Path
    port: int | None = None

    @property
    def url(self) -> str:
        assert self.port is not None, "the port is known once wait_healthy returned"
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal_group(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    async def wait_healthy(self, session: aiohttp.ClientSession, within: float = 60) -> None:
        """Wait until the process named its port and answers ``/healthz`` with 200."""

        async def healthy() -> bool:
            if self.process.returncode is not None:
                raise AssertionError(f"serve exited early:\n{self.log}")
            if self.port is None:
                self.port = serving_port(self.log)
                if self.port is None:
                    return False  # not listening yet
            try:
                async with session.get(f"{self.url}/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False  # not listening yet

        await eventually(healthy, within, every=0.1, what=f"serve healthy (log: {self.log_path})")


async def start_serve(env: dict[str, str], log_path: Path) -> ServeProcess:
    """Start ``serve`` with ``env`` on a port the OS chooses, in a new session; its output to
    ``log_path``. ``env`` keeps LOG_LEVEL at INFO or below: `wait_healthy` reads the port from the
    line it logs once bound."""
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            RUN_SERVE,
            cwd=REPO,
            env={**env, "PORT": "0"},
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    return ServeProcess(process, log_path)


async def prepare_database(url: str, data_dir: Path, tmp_path: Path) -> None:
    """Migrate (as an operator would, once) and import the demo bundle; stay connected."""
    await open_database(url, migrate=True)
    await import_bundle(write_demo_bundle(tmp_path / "bundle"), LocalBlobStore(data_dir))


@pytest.fixture
async def serves() -> AsyncIterator[list[ServeProcess]]:
    """Collects the serve processes a test starts; kills what is left of each process group (PDF
    workers too) at the end."""
    started: list[ServeProcess] = []
    yield started
    for serve in started:
        for signum in (signal.SIGCONT, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                serve.signal_group(signum)
        await serve.process.wait()
        # Captured, so shown with a failing test only: what each process did.
        print(f"----- last lines of {serve.log_path.name} -----")
        print("\n".join(serve.log.splitlines()[-LOG_LINES_SHOWN:]))


@pytest.fixture
async def pg_database(data_dir: Path) -> AsyncIterator[str]:
    """A fresh database on the shared test server (not opened), dropped afterwards."""
    name = await create_postgres_database()
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        await close_database()
        await drop_postgres_database(name)
