"""How fast Ctrl-C stops a CLI compile of a big backup, and what it leaves.

Run: ``.venv/bin/python bench/cli_stop.py [--runs 5]``. It imports the demo bundle into a
temporary data dir, attaches a 400-page PDF twenty times to one invoice (a compile of about
8,000 pages), then runs ``invoice-backups compile`` in its own session that many times and sends
SIGINT to its whole process group (as a terminal's Ctrl-C does) at a different moment of each
compile: 0 s, 1 s, 2 s … after the attachment triage child appeared. Per run it prints the time
from the signal to the exit, the exit status, and whether an output file, a partial file or a
live process of the session was left. Target: stopped within 1 s. The machine may be shared:
the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from commands.demo import write_demo_bundle  # noqa: E402
from commands.import_bundle import import_bundle  # noqa: E402
from storage.blobs import LocalBlobStore  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from tests.big_backup import attach_big_files  # noqa: E402
from tests.process_table import session_processes, triage_children  # noqa: E402

TARGET_SECONDS = 1.0


async def prepare(data_dir: Path) -> None:
    await open_database(f"sqlite://{data_dir / 'invoice-backups.sqlite3'}", migrate=True)
    try:
        await import_bundle(write_demo_bundle(data_dir / "bundle"), LocalBlobStore(data_dir))
        await attach_big_files(LocalBlobStore(data_dir), [9001], copies=20)
    finally:
        await close_database()


def wait_for(condition: object, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def one_run(data_dir: Path, output: Path, delay: float) -> tuple[float, int, list[str]]:
    env = {**os.environ, "BACKUPS_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "compile", "--project", "2026-014"]
        + ["--invoice", "9001", "--as", "pm@example.com", "-o", str(output)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        if not wait_for(lambda: triage_children(process.pid), 120):
            raise SystemExit("the compile never started its triage child")
        time.sleep(delay)  # a different moment of the compile in each run
        if process.poll() is not None:
            raise SystemExit(f"the compile ended before the signal ({delay} s): make it bigger")
        signalled = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        status = process.wait(60)
        stopped_in = time.monotonic() - signalled
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    left: list[str] = []
    if not wait_for(lambda: not session_processes(process.pid), 10):
        left.append(f"processes {[row.pid for row in session_processes(process.pid)]}")
    left += [str(path) for path in output.parent.iterdir()]
    left += [str(p) for p in (data_dir / "backups").rglob("*") if p.is_file()]
    return stopped_in, status, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cli-stop-") as scratch:
        data_dir = Path(scratch) / "data"
        data_dir.mkdir()
        out_dir = Path(scratch) / "out"
        out_dir.mkdir()
        asyncio.run(prepare(data_dir))
        times = []
        for run in range(args.runs):
            stopped_in, status, left = one_run(data_dir, out_dir / "backup.pdf", float(run))
            times.append(stopped_in)
            print(
                f"signal {run} s into the compile: stopped in {stopped_in:.2f} s, "
                f"exit status {status}, left: {', '.join(left) or 'nothing'}"
            )
    print(
        f"stop time: median {statistics.median(times):.2f} s, max {max(times):.2f} s "
        f"(target {TARGET_SECONDS:.0f} s: {'met' if max(times) <= TARGET_SECONDS else 'MISSED'}); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
