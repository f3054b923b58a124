"""Procore request counts against the fake Procore, with Procore-like rate limits.

Run: ``.venv/bin/python bench/procore_sync.py`` (``--help`` for options). It starts the fake
Procore (tests/procore/fake_procore.py) holding one project of ``--invoices`` invoices on
``--contracts`` commitments (every tenth private), with an hourly window (3,600/h) and a spike
window (25 per 10 s) reported through the ``X-Rate-Limit-*`` headers, and measures through the
Procore source (`sources.procore`):

1. the first (full) read of the project;
2. an incremental read after ``--changed`` invoices changed, plus re-reading their detail;
3. the reads a compile of ``--compile`` invoices needs: one freshness re-read of their headers,
   then each one's detail (never read before), and their attachment downloads.

It prints API requests (``/rest`` calls; token mints and file downloads apart), wall time and
the 429s the fake answered, against the targets of issue 9: first read ≤ 400, incremental
≤ 10 + changed, compile ≤ invoices + 5, zero 429s. The sync use case adds database writes on
top of these reads but no Procore request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from procore.client import ProcoreClient, ProcoreConfig  # noqa: E402
from sources.procore import (  # noqa: E402
    download_invoice_files,
    read_invoice,
    read_invoice_headers,
    read_project,
)
from tests.procore.fake_procore import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProcore,
    synthetic_world,
    touch,
)

PROJECT_ID = 562949953421312


def api_calls(fake: FakeProcore) -> int:
    return len(fake.api_requests())


async def run(args: argparse.Namespace) -> int:
    world = synthetic_world(project_id=PROJECT_ID, invoices=args.invoices, contracts=args.contracts)
    fake = FakeProcore(world, hourly=(3600, 3600.0), spike=(args.spike, 10.0))
    await fake.start()
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
            started = time.perf_counter()
            snapshot = await read_project(client, PROJECT_ID, since=None)
            first = api_calls(fake)
            print(
                f"first read: {len(snapshot.invoices):,} invoices, {len(snapshot.commitments)} "
                f"commitments, {len(snapshot.users)} users: {first} API requests "
                f"(target ≤ 400), {time.perf_counter() - started:.1f} s"
            )
            if first > 400:
                failures.append("first read")

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
                touch(project.requisitions[requisition_id], offset_seconds=1)
            fake.clear_logs()
            started = time.perf_counter()
            assert snapshot.as_of is not None
            incremental = await read_project(client, PROJECT_ID, since=snapshot.as_of)
            for invoice in incremental.invoices:
                await read_invoice(client, PROJECT_ID, invoice.id)
            count = api_calls(fake)
            print(
                f"incremental: {len(incremental.invoices)} changed invoices read with detail: "
                f"{count} API requests (target ≤ {10 + args.changed}), "
                f"{time.perf_counter() - started:.1f} s"
            )
            if count > 10 + args.changed:
                failures.append("incremental")

            fake.clear_logs()
            started = time.perf_counter()
            selected = list(project.requisitions)[-args.compile :]
            fresh = await read_invoice_headers(client, PROJECT_ID, selected)
            detailed = await asyncio.gather(
                *(read_invoice(client, PROJECT_ID, invoice.id) for invoice in fresh)
            )
            with tempfile.TemporaryDirectory() as scratch:
                for invoice in detailed:
                    await download_invoice_files(client, PROJECT_ID, invoice, Path(scratch), 10**8)
            count = api_calls(fake)
            downloads = len(fake.storage_hits)
            print(
                f"compile reads: {len(detailed)} invoices re-read and detailed: {count} API "
                f"requests (target ≤ {args.compile + 5}), {downloads} file downloads, "
                f"{time.perf_counter() - started:.1f} s"
            )
            if count > args.compile + 5:
                failures.append("compile")
            stats = client.stats
            print(
                f"client: {stats.token_mints} token mint(s), {stats.rate_limited} 429s received, "
                f"{stats.retries} retries, {stats.pacing_seconds:.1f} s pacing"
            )
    finally:
        await fake.close()
    print(f"429s answered by the fake: {fake.answered_429} (target 0)")
    if fake.answered_429:
        failures.append("429s")
    if failures:
        print("MISSED: " + ", ".join(failures))
        return 1
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--contracts", type=int, default=250)
    parser.add_argument("--changed", type=int, default=20)
    parser.add_argument("--compile", type=int, default=50)
    parser.add_argument("--spike", type=int, default=25, help="requests per 10 s")
    raise SystemExit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
