"""Scale-out throughput: small compiles through one bot process, then through two.

Run: ``.venv/bin/python bench/scale.py`` (``--help`` for options). It

1. makes a fresh PostgreSQL database (on ``--postgres``, default the test server on
   127.0.0.1:5432), applies the migrations and imports the demo bundle;
2. starts the fake Slack Web API (tests/slack/fake_slack.py) here;
3. for one process, then two: starts that many ``invoice-backups serve`` processes (HTTP mode,
   ``--workers`` PDF workers each, one shared BACKUPS_DATA_DIR), queues ``--jobs`` one-invoice
   compile jobs in the database and times them from queueing until the last one succeeded
   (each job posts its parent message, compiles, uploads the PDF and replies, as from Slack);
4. prints the throughput of each run, the ratio, and the cores it had.

The target is a ratio ≥ 1.8 where the machine has the cores for two processes (each with its
PDF workers) plus the fake Slack; on a smaller machine the ratio says how much the cores allow.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from bench.postgres import DEFAULT_SERVER, create_database, drop_database  # noqa: E402
from bench.serve_process import start_serve, stop_serve  # noqa: E402
from bot.backup_job import BackupJobPayload, enqueue_backup  # noqa: E402
from commands.access import Requester  # noqa: E402
from commands.demo import PROJECT_ID, write_demo_bundle  # noqa: E402
from commands.import_bundle import import_bundle  # noqa: E402
from storage.blobs import LocalBlobStore  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from storage.jobs import Job, JobStatus  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402

PM = "U0PM"
TARGET_RATIO = 1.8


def cores() -> int:
    """CPUs this process may run on (the affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def payload(channel: str) -> BackupJobPayload:
    return BackupJobPayload(
        channel_id=channel,
        user_id=PM,
        project_id=PROJECT_ID,
        project_label="Riverside Medical Office Building (2026-014)",
        invoice_ids=(9001,),
        requester=Requester("slack:U0PM", "pm@example.com", "Dana Reyes", PM),
        timezone="UTC",
    )


async def timed_run(
    processes: int, args: argparse.Namespace, fake: FakeSlack, database_url: str, data_dir: Path
) -> float:
    """Seconds for ``args.jobs`` compiles through ``processes`` bot processes."""
    started = [
        await start_serve(
            fake.api_url, database_url, data_dir, args.workers, BACKUPS_JOB_POLL_SECONDS="0.2"
        )
        for _ in range(processes)
    ]
    prefix = f"bench-{processes}-{uuid.uuid4().hex[:6]}:"
    channel = f"C_BENCH_{processes}"
    try:
        begin = time.perf_counter()
        for number in range(args.jobs):
            await enqueue_backup(f"{prefix}{number}", payload(channel))
        while True:
            done = await Job.filter(
                idempotency_key__startswith=prefix, status=JobStatus.SUCCEEDED
            ).count()
            failed = await Job.filter(
                idempotency_key__startswith=prefix, status=JobStatus.FAILED
            ).count()
            if failed:
                raise SystemExit(f"{failed} jobs failed")
            if done == args.jobs:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - begin
    finally:
        for process, _ in started:
            await stop_serve(process)
    parents = [m for m in fake.top_level_messages() if m.channel == channel]
    files = [u for u in fake.uploads.values() if u.completed and u.channel == channel]
    assert len(parents) == len(files) == args.jobs, (len(parents), len(files))
    return elapsed


async def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    data_dir = work / "data"
    data_dir.mkdir()
    os.environ["BACKUPS_DATA_DIR"] = str(data_dir)
    name = f"ib_scale_{os.getpid()}"
    database_url = await create_database(args.postgres, name)
    fake = FakeSlack()
    try:
        await open_database(database_url, migrate=True)
        await import_bundle(write_demo_bundle(work / "bundle"), LocalBlobStore(data_dir))
        await fake.start()
        seconds = {n: await timed_run(n, args, fake, database_url, data_dir) for n in (1, 2)}
    finally:
        await close_database()
        await fake.close()
        await drop_database(args.postgres, name)
        shutil.rmtree(work, ignore_errors=True)
    report(args, seconds)
    return 0


def report(args: argparse.Namespace, seconds: dict[int, float]) -> None:
    rates = {n: args.jobs / s for n, s in seconds.items()}
    ratio = round(rates[2] / rates[1], 2)  # judged as printed
    needed = 2 * (args.workers + 1) + 1  # two bots (PDF workers + event loop) + the fake Slack
    print(f"{args.jobs} one-invoice compiles, {args.workers} PDF worker(s) per process")
    print(f"cores available: {cores()} (load average {os.getloadavg()[0]:.2f} at the end)")
    for n in (1, 2):
        print(
            f"  {n} process{'es' if n > 1 else '  '}: {seconds[n]:6.1f} s  {rates[n]:6.1f} jobs/s"
        )
    print(f"ratio two/one: {ratio:.2f}× (target ≥ {TARGET_RATIO}×)")
    if ratio >= TARGET_RATIO:
        print("verdict: target met")
    elif cores() < needed:
        print(
            f"verdict: below target, on a machine too small to judge: two processes (PDF "
            f"workers and event loops) and the fake Slack want about {needed} cores and share "
            f"{cores()} here"
        )
    else:
        print("verdict: target NOT met")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="compiles per run")
    parser.add_argument("--workers", type=int, default=1, help="BACKUPS_WORKERS of each process")
    parser.add_argument(
        "--postgres",
        default=DEFAULT_SERVER,
        help="PostgreSQL server URL (trust auth); a database is made and dropped there",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
