"""``invoice-backups procore check|sync`` and a Procore-fresh ``compile``, run as a user runs
them (a subprocess, embedded SQLite) against the fake Procore over real HTTP."""

from __future__ import annotations

import asyncio
import os
import pty
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pypdf import PdfReader

from bot.procore_sync_job import PROCORE_SYNC
from commands.demo import ADMIN_EMAIL, write_demo_bundle
from storage import jobs
from storage.db import close_database, open_database
from storage.jobs import Job, JobStatus
from storage.models import Project
from tests.procore.fake_procore import (
    CLIENT_SECRET,
    FakeProcore,
    FakeProject,
    touch,
    world_from_bundle,
)
from tests.procore.fixtures import procore_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeProcore]:
    world = world_from_bundle(write_demo_bundle(tmp_path / "demo"))
    world.add_project(FakeProject(id=77, name="Locked", project_number="L-7", forbidden=True))
    world.my_tools = [
        {"name": "commitments", "user_access_level": {"id": 2, "name": "Read Only"}},
        {"name": "directory", "user_access_level": {"id": 0, "name": "None"}},
    ]
    async with FakeProcore(world) as server:
        yield server


async def start(
    data_dir: Path,
    *args: str,
    procore: FakeProcore | None = None,
    stderr: int = asyncio.subprocess.PIPE,
    **extra: str,
) -> asyncio.subprocess.Process:
    """The command line ``invoice-backups ARGS`` started as a user starts it (pipes for its
    output, or ``stderr`` a terminal's file descriptor), on the SQLite database of
    ``data_dir``."""
    env = {**os.environ, "BACKUPS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), **extra}
    env.pop("DATABASE_URL", None)
    for name in list(env):
        if name.startswith("PROCORE_"):
            del env[name]
    if procore is not None:
        env.update(procore_environment(procore))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


async def finished(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Its exit status and output, once it ends."""
    out, err = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode is not None
    return process.returncode, out.decode(), (err or b"").decode()


async def run(
    data_dir: Path, *args: str, procore: FakeProcore | None = None, **extra: str
) -> tuple[int, str, str]:
    """Run ``invoice-backups ARGS`` to its end (see `start`)."""
    return await finished(await start(data_dir, *args, procore=procore, **extra))


async def test_check_sync_and_a_fresh_compile(tmp_path: Path, fake: FakeProcore) -> None:
    data = tmp_path / "data"
    assert (await run(data, "migrate"))[0] == 0

    code, out, err = await run(data, "procore", "check", procore=fake)
    assert code == 3, err
    assert "Token: OK" in out and "permission templates: readable" in out
    assert "Locked (L-7): NOT reachable" in out and "Permitted Projects" in out
    assert "lacks read access to Directory" in out
    assert CLIENT_SECRET not in out + err

    code, out, err = await run(data, "procore", "sync", procore=fake)
    assert code == 3, err  # one project is unreachable
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert any(": synced (full): " in line and "invoices created" in line for line in lines)
    assert any(line.startswith("Locked (L-7): unreachable: ") for line in lines)
    assert "\r" not in err  # no progress bar without a terminal

    project = fake.world.projects[1001]
    requisition = project.requisitions[9001]
    requisition["invoice_number"] = "CLI-FRESH-1"
    touch(requisition, offset_seconds=2)
    code, out, err = await run(
        data, "procore", "sync", "--project", "2026-014", "--project", "NOPE", procore=fake
    )
    assert code == 3, err
    assert "NOPE: not found" in out and ": synced (changes only): " in out

    code, out, err = await run(
        data,
        "compile",
        "--project",
        "2026-014",
        "--invoice",
        "9001",
        "--as",
        ADMIN_EMAIL,
        "-o",
        str(tmp_path / "fresh.pdf"),
        procore=fake,
    )
    assert code == 0, err
    text = "\n".join(page.extract_text() or "" for page in PdfReader(tmp_path / "fresh.pdf").pages)
    assert "CLI-FRESH-1" in text and "data as of" not in text


async def test_procore_commands_need_the_settings_and_say_when_the_token_fails(
    tmp_path: Path, fake: FakeProcore
) -> None:
    data = tmp_path / "data"
    assert (await run(data, "migrate"))[0] == 0
    code, _, err = await run(data, "procore", "sync")
    assert code == 2 and err.count("\n") == 1 and "PROCORE_CLIENT_ID is not set" in err
    fake.world.client_secret = "rotated"
    code, out, err = await run(data, "procore", "check", procore=fake)
    assert code == 1 and err.count("\n") == 1 and "refused the service account" in err
    assert CLIENT_SECRET not in out + err and "Traceback" not in err


async def test_a_cli_sync_waits_while_a_bot_sync_job_runs_and_runs_as_one_itself(
    tmp_path: Path, fake: FakeProcore
) -> None:
    data = tmp_path / "data"
    assert (await run(data, "migrate"))[0] == 0
    await open_database(f"sqlite://{data / 'invoice-backups.sqlite3'}")  # the CLI's database
    try:
        queued = await jobs.enqueue(
            "procore-sync-now:bot", {"project_ids": [1001], "full": False}, kind=PROCORE_SYNC
        )
        held = await jobs.claim_next(
            "bot-worker", 300, kinds=(PROCORE_SYNC,), exclusive=(PROCORE_SYNC,)
        )
        assert held is not None and held.id == queued.job.id  # a bot process is syncing

        process = await start(data, "procore", "sync", "--project", "2026-014", procore=fake)
        assert process.stderr is not None
        said = b""
        while b"Waiting for the Procore sync already running" not in said:
            line = await asyncio.wait_for(process.stderr.readline(), 120)
            assert line, "the command ended without waiting"
            said += line
        assert f"(job {held.id})".encode() in said
        # Waiting: not one Procore call, and still only the bot's sync job runs.
        assert fake.api_requests() == []
        assert await Job.filter(kind=PROCORE_SYNC, status=JobStatus.RUNNING).count() == 1

        await jobs.finish(held, "bot-worker", JobStatus.SUCCEEDED)
        code, out, err = await finished(process)
        assert code == 0, said.decode() + err
        [line] = out.strip().splitlines()
        assert "(2026-014): synced (full): " in line and "invoices created" in line
        assert fake.api_requests()
        [mine] = await Job.filter(kind=PROCORE_SYNC).exclude(id=held.id)
        assert mine.status == JobStatus.SUCCEEDED and mine.lease_owner is None
        assert mine.idempotency_key.startswith("procore-sync-cli:")
        assert mine.error == line  # the job's note: the line per project
        assert await Project.filter(id=1001).exists()
    finally:
        await close_database()


async def test_sync_on_a_terminal_draws_a_progress_bar(tmp_path: Path, fake: FakeProcore) -> None:
    data = tmp_path / "data"
    assert (await run(data, "migrate"))[0] == 0
    terminal, side = pty.openpty()  # stderr is a terminal: the bar is drawn there
    try:
        process = await start(data, "procore", "sync", procore=fake, stderr=side)
        os.close(side)
        code, out, _ = await finished(process)
        drawn = b""
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the command's end of the terminal is closed, all read
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(terminal)
    assert code == 3
    assert len(out.strip().splitlines()) == 2  # one line per project, on stdout as always
    screen = drawn.decode()
    assert "\r[" in screen and "] 0/1 listing projects" in screen
    assert "] 2/2 " in screen and "#" * 24 in screen  # the bar full at the end
