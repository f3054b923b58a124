"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM on a CLI compile
of a big backup, while its PDF worker and attachment triage child run: the command stops, with
exit status 128 + the signal, leaving no output file, no temporary file and no process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from commands.compile_backups import INTERRUPTED_WARNING
from commands.demo import write_demo_bundle
from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore
from storage.db import close_database, open_database
from storage.models import Backup
from tests.big_backup import attach_big_files
from tests.process_table import session_processes, triage_children, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_signal_to_the_group_stops_a_compile_and_leaves_nothing(
    data_dir: Path, tmp_path: Path, signum: int, status: int
) -> None:
    database_url = f"sqlite://{data_dir / 'invoice-backups.sqlite3'}"  # the CLI's default
    await open_database(database_url, migrate=True)
    try:
        await import_bundle(write_demo_bundle(tmp_path / "bundle"), LocalBlobStore(data_dir))
        await attach_big_files(LocalBlobStore(data_dir), [9001], copies=20)
    finally:
        await close_database()
    output_folder = tmp_path / "out"
    env = {**os.environ, "BACKUPS_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot.cli", "compile", "--project", "2026-014", "--invoice", "9001"),
        *("--as", "pm@example.com", "-o", str(output_folder / "backup.pdf")),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own session and process group, as in a terminal
    )
    session = process.pid
    try:
        await wait_until(lambda: triage_children(session), 120, "the compile's triage child")
        assert len(session_processes(session)) >= 4  # main, fork server, PDF worker, triage
        os.killpg(session, signum)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            os.killpg(session, signal.SIGKILL)
            await process.wait()

    assert process.returncode == status, stderr.decode()
    assert stderr.decode() == "invoice-backups compile: interrupted\n"
    assert "PDF:" not in stdout.decode()
    await wait_until(lambda: not session_processes(session), 10, "the session to end")
    assert not output_folder.exists() or list(output_folder.iterdir()) == []
    assert [path for path in (data_dir / "backups").rglob("*") if path.is_file()] == []
    await open_database(database_url)
    try:
        [backup] = await Backup.all()
    finally:
        await close_database()
    assert backup.status == "failed" and backup.warnings == [INTERRUPTED_WARNING]
