"""Procore sync and compile against the fake Procore with Procore-like rate limits, through the
real use cases and a real database.

Run: ``.venv/bin/python bench/procore_sync.py`` (``--help`` for options). It starts the fake
Procore (tests/procore/fake_procore.py) holding one project of ``--invoices`` invoices on
``--contracts`` commitments (every tenth private), with an hourly window (3,600/h) and a spike
window (25 per 10 s) reported through the ``X-Rate-Limit-*`` headers, opens a fresh SQLite
database (``--database`` for another URL) and measures:

1. the first sync (`commands.sync_procore.sync_project`: a full pass, lists only);
2. an incremental sync after ``--changed`` invoices changed;
3. compiling ``--compile`` invoices with `commands.compile_backups.compile_backup` and the
   freshness step (`commands.procore_freshness.ProcoreFreshness`: one header re-read, each
   invoice's detail read for the first time, the attachments downloaded into the blob store).

It prints API requests (``/rest`` calls; token mints and file downloads apart), wall time and the
429s the fake answered, against the targets of issue 9: first sync ≤ 400, incremental ≤ 10 +
changed, compile ≤ invoices + 5, zero 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from commands.access import Requester  # noqa: E402
from commands.compile_backups import compile_backup  # noqa: E402
from commands.procore_freshness import ProcoreFreshness  # noqa: E402
from commands.sync_procore import sync_project  # noqa: E402
from procore.client import ProcoreClient, ProcoreConfig  # noqa: E402
from storage.blobs import LocalBlobStore  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from storage.models import Invoice, Project  # noqa: E402
from tests.procore.fake_procore import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProcore,
    synthetic_world,
    touch,
)

PROJECT_ID = 562949953421312
ADMIN = Requester(key="bench:admin", email="user3@example.com", display_name="User 3")


def api_calls(fake: FakeProcore) -> int:
    return len(fake.api_requests())


def timing(started: tuple[float, float]) -> str:
    """Wall and CPU time since ``started`` (`clock`), with the load average: wall time depends
    on the machine's load and mostly on the rate-limit pacing; request counts do not."""
    wall, cpu = started
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
        f"(load average {load})"
    )


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


async def run(args: argparse.Namespace, scratch: Path) -> int:
    world = synthetic_world(project_id=PROJECT_ID, invoices=args.invoices, contracts=args.contracts)
    fake = FakeProcore(world, hourly=(3600, 3600.0), spike=(args.spike, 10.0))
    await fake.start()
    await open_database(args.database or f"sqlite://{scratch / 'bench.sqlite3'}", migrate=True)
    config = ProcoreConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        company_id=world.company_id,
        api_url=fake.url,
        login_url=fake.url,
    )
    failures = []
    try:
        async with ProcoreClient(config) as client:
            started = clock()
            line = await sync_project(client, PROJECT_ID, full=True)
            first = api_calls(fake)
            print(
                f"first sync: {line.render()}\n  {first} API requests (target ≤ 400), "
                f"{timing(started)}"
            )
            if first > 400 or line.outcome != "synced":
                failures.append("first sync")

            project = world.projects[PROJECT_ID]
            for record in (
                project.billing_periods
                + project.work_order_contracts
                + project.purchase_order_contracts
                + list(project.requisitions.values())
            ):
                record["updated_at"] = "2020-01-01T00:00:00Z"
            changed = list(project.requisitions)[: args.changed]
            for requisition_id in changed:
                project.requisitions[requisition_id]["status"] = "revise_and_resubmit"
                touch(project.requisitions[requisition_id], offset_seconds=1)
            fake.clear_logs()
            started = clock()
            line = await sync_project(client, PROJECT_ID)
            count = api_calls(fake)
            resubmit = await Invoice.filter(
                project_id=PROJECT_ID, status="revise_and_resubmit"
            ).count()
            print(
                f"incremental sync: {line.render()}\n  {resubmit} invoices now changed in the "
                f"database; {count} API requests (target ≤ {10 + args.changed}), "
                f"{timing(started)}"
            )
            if count > 10 + args.changed or resubmit != len(changed):
                failures.append("incremental")

            fake.clear_logs()
            selected = [
                int(invoice_id)
                for invoice_id in await Invoice.filter(project_id=PROJECT_ID)
                .exclude(commitment__private=True)
                .order_by("-id")
                .limit(args.compile)
                .values_list("id", flat=True)
            ]
            blobs = LocalBlobStore(scratch / "blobs")
            started = clock()
            result = await compile_backup(
                ADMIN,
                PROJECT_ID,
                selected,
                blobs=blobs,
                freshness=ProcoreFreshness(client, blobs),
            )
            count = api_calls(fake)
            downloads = len(fake.storage_hits)
            print(
                f"compile: {result.status}, {result.invoice_count} invoices, "
                f"{result.page_count} pages, data as of: {result.data_note or 'now'}\n  "
                f"{count} API requests (target ≤ {len(selected) + 5}), {downloads} file "
                f"downloads, {timing(started)}"
            )
            if count > len(selected) + 5 or result.data_as_of is not None:
                failures.append("compile")
            stats = client.stats
            print(
                f"client: {stats.token_mints} token mint(s), {stats.rate_limited} 429s received, "
                f"{stats.retries} retries, {stats.pacing_seconds:.1f} s pacing"
            )
            project_row = await Project.get(id=PROJECT_ID)
            assert project_row.source == "procore"
    finally:
        await close_database()
        await fake.close()
    print(f"429s answered by the fake: {fake.answered_429} (target 0)")
    if fake.answered_429:
        failures.append("429s")
    if failures:
        print("MISSED: " + ", ".join(failures))
        return 1
    return 0


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="procore-bench-") as scratch:
        return await run(args, Path(scratch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--contracts", type=int, default=250)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--compile", type=int, default=50)
    parser.add_argument("--spike", type=int, default=25, help="requests per 10 s")
    parser.add_argument("--database", help="database URL (default: a fresh SQLite file)")
    raise SystemExit(asyncio.run(main_async(parser.parse_args())))


if __name__ == "__main__":
    main()
