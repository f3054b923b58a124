"""Procore webhooks under load: 1,000 deliveries in 10 s into one bot process on PostgreSQL.

Run: ``.venv/bin/python bench/procore_webhooks.py`` (``--help`` for options). It

1. starts the fake Procore (tests/procore/fake_procore.py) holding one project of
   ``--invoices`` invoices, reads it whole into a fresh PostgreSQL database (as the sync does);
2. starts the real bot in a child process (``invoice-backups serve``, HTTP mode, fake Slack,
   PROCORE_* pointing at the fake, PROCORE_WEBHOOK_SECRET set) and registers the company hook
   with `commands.procore_webhooks.install_hooks`;
3. over ``--seconds`` seconds changes ``--resources`` invoices in the fake Procore, one after
   the other, and for each sends a burst of deliveries, as Procore does on a save: ``create``
   and three ``update`` events 20 ms apart, then Procore's retry of the first one (same
   ``ulid``, a duplicate) a second later: 5 deliveries per invoice, 1,000 by default;
4. times every delivery from request to HTTP answer (as the sender sees it, and in the bot's
   process from its ``/metrics``: the whole answer and the database part), counts the Procore
   reads the bot made at the fake (by kind of request), and polls the database (what the
   invoice search reads) for the time from an invoice's first delivery until its new status
   is visible;
5. then, in this process, stores ``--sample`` deliveries of a project the bot does not hold
   with `commands.procore_webhooks.receive_delivery` (what the endpoint runs), counting the
   SQL statements each makes (tortoise's query log) and timing them.

It prints the three figures next to their targets (answer p99 ≤ 50 ms; Procore reads: one per
distinct invoice changed; delivery → visible p95 ≤ 2 s), reads by kind, statements per
delivery and the load average (the machine may be shared: timings inflate with it, counts do
not). Exit status 1 when a target is missed (the verdict says which). The fake's rate limits
are generous (1,000 per 10 s): with Procore's documented spike limit (25 per 10 s) the reads
themselves would take longer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bot_metrics import bound_holding, histogram_buckets  # noqa: E402
from bench.postgres import DEFAULT_SERVER, create_database, drop_database  # noqa: E402
from bench.serve_process import start_serve, stop_serve  # noqa: E402
from commands.apply_snapshot import apply_snapshot  # noqa: E402
from commands.procore_webhooks import install_hooks, parse_delivery, receive_delivery  # noqa: E402
from procore.client import ProcoreClient, ProcoreConfig  # noqa: E402
from sources.procore import read_project  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from storage.models import Invoice  # noqa: E402
from tests.procore.fake_procore import (  # noqa: E402
    CLIENT_ID,
    CLIENT_SECRET,
    FakeProcore,
    post_delivery,
    synthetic_world,
    touch,
    webhook_payload,
)
from tests.procore.fixtures import procore_environment  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402

PROJECT_ID = 562949953421312
WEBHOOK_SECRET = "bench-webhook-secret-0123456789abcdef"
BURST = ("create", "update", "update", "update")
BURST_GAP_SECONDS = 0.02
RETRY_AFTER_SECONDS = 1.0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def run(args: argparse.Namespace) -> int:
    world = synthetic_world(project_id=PROJECT_ID, invoices=args.invoices, contracts=50)
    fake = FakeProcore(world)
    await fake.start()
    name = f"ib_bench_{uuid.uuid4().hex[:12]}"
    database_url = await create_database(args.postgres, name)
    slack = FakeSlack()
    await slack.start()
    config = ProcoreConfig(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        company_id=world.company_id,
        api_url=fake.url,
        login_url=fake.url,
    )
    try:
        await open_database(database_url, migrate=True)
        async with ProcoreClient(config) as client:
            await apply_snapshot(await read_project(client, PROJECT_ID, since=None))
            with tempfile.TemporaryDirectory() as data_dir:
                process, url = await start_serve(
                    slack.api_url,
                    database_url,
                    Path(data_dir),
                    2,
                    **procore_environment(fake),
                    PROCORE_SYNC_MINUTES="0",
                    PROCORE_WEBHOOK_SECRET=WEBHOOK_SECRET,
                )
                try:
                    await install_hooks(
                        client, f"{url}/procore/webhooks", WEBHOOK_SECRET, scope="company"
                    )
                    return await measure(fake, args, url)
                finally:
                    await stop_serve(process)
    finally:
        await close_database()
        await slack.close()
        await fake.close()
        await drop_database(args.postgres, name)


async def measure(fake: FakeProcore, args: argparse.Namespace, bot_url: str) -> int:
    project = fake.world.projects[PROJECT_ID]
    [hook] = fake.world.hooks.values()
    destination, headers = hook["destination_url"], hook["destination_headers"]
    chosen = sorted(project.requisitions)[: args.resources]
    answers: list[float] = []
    statuses: list[int] = []
    first_sent: dict[int, float] = {}
    visible_at: dict[int, float] = {}
    fake.clear_logs()

    async with aiohttp.ClientSession() as session:

        async def send(payload: dict) -> None:
            started = time.perf_counter()
            status = await post_delivery(destination, payload, headers, session=session)
            answers.append(time.perf_counter() - started)
            statuses.append(status)

        async def burst(invoice_id: int) -> None:
            requisition = project.requisitions[invoice_id]
            requisition["status"] = "under_review"
            touch(requisition)
            payloads = [
                webhook_payload(fake.world.company_id, PROJECT_ID, "Draw Requests", invoice_id, e)
                for e in BURST
            ]
            first_sent[invoice_id] = time.perf_counter()
            for payload in payloads:
                await send(payload)
                await asyncio.sleep(BURST_GAP_SECONDS)
            await asyncio.sleep(RETRY_AFTER_SECONDS)
            await send(payloads[0])  # Procore's retry: the same ulid

        async def watch() -> None:
            while len(visible_at) < len(chosen):
                waiting = [i for i in first_sent if i not in visible_at]
                if waiting:
                    seen = await Invoice.filter(id__in=waiting, status="under_review").values_list(
                        "id", flat=True
                    )
                    now = time.perf_counter()
                    for invoice_id in seen:
                        visible_at[int(invoice_id)] = now
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        interval = args.seconds / len(chosen)
        started = time.perf_counter()
        bursts = []
        for index, invoice_id in enumerate(chosen):
            delay = started + index * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            bursts.append(asyncio.create_task(burst(invoice_id)))
        await asyncio.gather(*bursts)
        sent_for = time.perf_counter() - started
        with contextlib.suppress(TimeoutError):  # what was not seen in time is reported
            await asyncio.wait_for(watcher, 60)

    reads = fake.api_requests()
    invoice_reads = fake.api_requests("/rest/v1.1/requisitions/")
    visible = [visible_at[i] - first_sent[i] for i in visible_at]
    in_process = await scraped_seconds(bot_url)
    statements, store_seconds = await statements_per_delivery(args.sample, fake.world.company_id)
    load = os.getloadavg()
    answer_p99 = percentile(answers, 0.99)
    visible_p95 = percentile(visible, 0.95)
    print(
        f"{len(answers)} deliveries ({len(chosen)} invoices × {len(BURST) + 1}, one duplicate "
        f"each) in {sent_for:.1f} s; HTTP answers: "
        + ", ".join(f"{status}×{statuses.count(status)}" for status in sorted(set(statuses)))
    )
    print(
        "answer time ms (sender): p50 {:.1f}, p95 {:.1f}, p99 {:.1f}, max {:.1f} "
        "(target p99 ≤ 50)".format(*(1000 * percentile(answers, q) for q in (0.5, 0.95, 0.99, 1.0)))
    )
    for part, (count, p50, p99) in sorted(in_process.items()):
        print(f"  in the bot ({part}): {count} observed, p50 ≤ {p50}, p99 ≤ {p99} ms (buckets)")
    print(
        f"Procore reads: {len(reads)} for {len(chosen)} distinct invoices changed "
        f"({len({r.path for r in invoice_reads})} distinct invoices read; target one per "
        "invoice); by kind: "
        + ", ".join(f"{kind} {n}" for kind, n in Counter(read_kind(r.path) for r in reads).items())
    )
    print(
        f"delivery → visible: {len(visible)}/{len(chosen)} seen; p50 "
        f"{percentile(visible, 0.5):.2f} s, p95 {visible_p95:.2f} s, max "
        f"{percentile(visible, 1.0):.2f} s (target p95 ≤ 2 s)"
    )
    print(
        f"statements per delivery (in process, {args.sample} deliveries): {statements:.2f}; "
        f"{1000 * store_seconds:.1f} ms each (mean, wall clock)"
    )
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} ({os.cpu_count()} CPUs)")
    missed = [
        name
        for name, ok in (
            ("answer p99 ≤ 50 ms", answer_p99 <= 0.05),
            ("one read per invoice", len(reads) <= len(chosen)),
            ("every change visible", len(visible) == len(chosen)),
            ("visible p95 ≤ 2 s", visible_p95 <= 2.0),
        )
        if not ok
    ]
    print("verdict:", "all targets met" if not missed else "missed: " + "; ".join(missed))
    return 0 if not missed else 1


def read_kind(path: str) -> str:
    """A Procore request's path without its ids (``/rest/v1.1/requisitions/{id}``)."""
    return re.sub(r"/\d+", "/{id}", path)


async def scraped_seconds(bot_url: str) -> dict[str, tuple[int, str, str]]:
    """The bot's own webhook timings (`bot.metrics.WEBHOOK_SECONDS`): per part, the count and
    the bucket bounds (ms) holding the median and the 99th percentile."""
    buckets = await histogram_buckets(bot_url, "invoice_backups_webhook_seconds", "part")
    return {
        part: (
            int(max(counts.values())),
            _ms(bound_holding(counts, 0.5)),
            _ms(bound_holding(counts, 0.99)),
        )
        for part, counts in buckets.items()
    }


def _ms(bound: float) -> str:
    return "∞" if math.isinf(bound) else f"{1000 * bound:g}"


async def statements_per_delivery(sample: int, company_id: int) -> tuple[float, float]:
    """Store ``sample`` deliveries as the endpoint does (a project the bot does not hold, so
    its passes read nothing); the SQL statements per delivery and the mean seconds each took."""
    counted: list[logging.LogRecord] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counted.append(record)

    query_log = logging.getLogger("tortoise.db_client")
    handler, level = Count(logging.DEBUG), query_log.level
    query_log.addHandler(handler)
    query_log.setLevel(logging.DEBUG)
    queued: dict[str, int] = {}
    started = time.perf_counter()
    try:
        for number in range(sample):
            payload = webhook_payload(
                company_id, PROJECT_ID + 1, "Draw Requests", 1 + number % 10, "update"
            )
            await receive_delivery(parse_delivery(json.dumps(payload).encode()), queued)
    finally:
        query_log.removeHandler(handler)
        query_log.setLevel(level)
    return len(counted) / sample, (time.perf_counter() - started) / sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=1000, help="invoices in the project")
    parser.add_argument("--resources", type=int, default=200, help="invoices changed")
    parser.add_argument("--seconds", type=float, default=10.0, help="spread over this long")
    parser.add_argument(
        "--sample", type=int, default=50, help="deliveries whose SQL statements are counted"
    )
    parser.add_argument(
        "--postgres",
        default=DEFAULT_SERVER,
        help="PostgreSQL server (a fresh database is made and dropped)",
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
