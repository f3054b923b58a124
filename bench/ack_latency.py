"""Ack latency of the Slack bot under load, and the invoice search with 10,000 invoices.

Run: ``.venv/bin/python bench/ack_latency.py`` (``--help`` for options). It

1. generates a project bundle with 10,000 invoices (250 contracts × 40 applications, 36 billing
   periods; the invoices of the two large backups carry the demo bundle's real attachments,
   including a 1.9 MB scan) and imports it with `commands.import_bundle`;
2. starts the fake Slack Web API (tests/slack/fake_slack.py) here and the real bot in a child
   process (``run_serve``, as ``invoice-backups serve`` does), HTTP mode, pointed at the fake;
3. queues large backups (100 invoices each; six by default, so that with BACKUPS_WORKERS=2 two
   are compiling at any moment for a while) and, while they compile, sends signed requests
   round-robin (slash command, options load with a typed query, valid submission), one at a
   time, timing each from request to HTTP answer;
4. then times options loads alone (idle bot), per query.

With ``--split`` (PostgreSQL) a second bot process runs the jobs and the one timed runs none
(``BACKUPS_RUN_JOBS=false``), as a deployment that keeps compiles off the process answering Slack.
With ``--pin`` as well, the process answering Slack has the first CPU (shared only with the process
that times the requests) and the job process (with the compiles) and the fake Slack share the
others, as when the two processes run on hosts of their own (PostgreSQL stays on every CPU).

The machine may be shared: the load average is printed with the figures.

It prints p50/p95/p99/max per kind, and the verdict against the targets: p99 ≤ 50 ms for every
ack on PostgreSQL, ≤ 100 ms on SQLite; options search p95 ≤ 50 ms, idle and under load.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from copy import deepcopy
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from tortoise import connections  # noqa: E402

from bench.bot_metrics import Buckets, bound_holding, histogram_buckets  # noqa: E402
from bench.postgres import create_database, drop_database  # noqa: E402
from bench.serve_process import SECRET, start_serve, stop_serve  # noqa: E402
from commands.demo import USERS, write_demo_bundle  # noqa: E402
from commands.import_bundle import import_bundle  # noqa: E402
from sources.bundle_writer import BundleData, write_bundle_folder  # noqa: E402
from storage.blobs import LocalBlobStore  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from tests.process_table import process_tree  # noqa: E402
from tests.slack.fake_slack import FakeSlack  # noqa: E402
from tests.slack.slack_driver import Answer, SlackDriver, flatten_options  # noqa: E402

PROJECT_ID = 4242
PM = "U0PM"
CONTRACTS = 250
PERIODS = 36
BIG_BACKUP = 100
QUICK_STOP = {"BACKUPS_SHUTDOWN_GRACE_SECONDS": "1"}
FIRST_INVOICE_ID = 1_000_000
# What people type: contract and invoice numbers, vendors, several words, amounts with and
# without punctuation, period names, statuses, short numbers and a query nothing matches.
QUERIES = (
    "",
    "SC-0",
    "SC-12",
    "Mechanical",
    "Vendor 17",
    "Electrical 12",
    "#7",
    "2025",
    "Oct 2025",
    "Concrete",
    "3",
    "SC-012-012",
    "65,700",
    "$46,293.75",
    "approved",
    "zzqx",
)
ACK_TARGET_P99 = {"postgres": 0.050, "sqlite": 0.100}  # issue 12, target 4
SEARCH_TARGET_P95 = 0.050


# --- the data ------------------------------------------------------------------------------


def generate_bundle(folder: Path, invoices: int) -> list[int]:
    """Write the big bundle into ``folder``; return the invoice ids that carry attachments."""
    demo = write_demo_bundle(folder / "demo")
    templates = [
        r
        for r in json.loads((demo / "requisitions.json").read_text())
        if r["period_id"] != 599 and not r.get("signed_pdf")
    ]
    commitment_template = json.loads((demo / "commitments.json").read_text())[0]
    bundle = folder / "bundle"
    bundle.mkdir()
    shutil.copytree(demo / "files", bundle / "files")
    trades = ("Concrete", "Mechanical", "Electrical", "Drywall", "Roofing", "Glazing")
    commitments = []
    for n in range(1, CONTRACTS + 1):
        commitment = deepcopy(commitment_template)
        commitment.update(
            id=10_000 + n,
            number=f"SC-{n:03}",
            title=f"{trades[n % len(trades)]} package {n}",
            vendor={"id": 20_000 + n, "name": f"Vendor {n} {trades[n % len(trades)]}"},
            invoice_contacts=[],
            private_list=[],
            private=False,
        )
        commitments.append(commitment)
    periods = []
    for position in range(1, PERIODS + 1):
        year, month = 2024 + (position - 1) // 12, (position - 1) % 12 + 1
        end_day = 28
        periods.append(
            {
                "id": 500 + position,
                "position": position,
                "start_date": f"{year}-{month:02}-01",
                "end_date": f"{year}-{month:02}-{end_day}",
                "due_date": f"{year}-{month:02}-{end_day}",
                "status": "open" if position == PERIODS else "closed",
            }
        )
    with_attachments = set(range(FIRST_INVOICE_ID, FIRST_INVOICE_ID + 2 * BIG_BACKUP))
    requisitions = []
    attachment_id = 5_000_000
    for index in range(invoices):
        invoice_id = FIRST_INVOICE_ID + index
        commitment = commitments[index % CONTRACTS]
        application = index // CONTRACTS + 1
        period = periods[(application - 1) % PERIODS]
        requisition = deepcopy(templates[index % len(templates)])
        requisition.update(
            id=invoice_id,
            number=application,
            invoice_number=f"{commitment['number']}-{application:03}",
            commitment_id=commitment["id"],
            period_id=period["id"],
            requisition_start=period["start_date"],
            requisition_end=period["end_date"],
            billing_date=period["end_date"],
            signed_pdf=None,
        )
        for item in requisition["items"]:
            item["id"] = invoice_id * 100 + item["position"]
        if invoice_id in with_attachments:
            for attachment in requisition["attachments"]:
                attachment_id += 1
                attachment["id"] = attachment_id
        else:
            requisition["attachments"] = []
        requisitions.append(requisition)
    write_bundle_folder(
        bundle,
        BundleData(
            project={
                "id": PROJECT_ID,
                "name": "Bench Tower",
                "project_number": "BENCH-1",
                "company": {"id": 11, "name": "Northwind Builders, Inc."},
            },
            billing_periods=periods,
            commitments=commitments,
            users=[USERS[0]],  # Dana Reyes, pm@example.com: admin
            requisitions=requisitions,
        ),
        indent=None,
    )
    return sorted(with_attachments)


# --- running the bot -----------------------------------------------------------------------


# --- measuring -----------------------------------------------------------------------------


def option(invoice_id: int) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": f"#{invoice_id}"}, "value": str(invoice_id)}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))]


def report(title: str, samples: dict[str, list[float]]) -> None:
    print(f"\n{title}")
    print(f"  {'kind':<12} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, values in samples.items():
        if not values:
            continue
        print(
            f"  {kind:<12} {len(values):>5} {percentile(values, 0.5) * 1000:>8.1f}"
            f" {percentile(values, 0.95) * 1000:>8.1f} {percentile(values, 0.99) * 1000:>8.1f}"
            f" {max(values) * 1000:>8.1f}"
        )


async def run(args: argparse.Namespace) -> int:
    if args.reuse:
        work = Path(args.reuse)
        database_url = args.reuse_url
        postgres_name = None
    else:
        work = Path(tempfile.mkdtemp(prefix="ack-latency-", dir=args.work_dir))
        database_url = f"sqlite://{work / 'data' / 'bench.sqlite3'}"
        postgres_name = None
        if args.postgres:
            postgres_name = f"ib_bench_{os.getpid()}"
            database_url = await create_database(args.postgres, postgres_name)
    data_dir = work / "data"
    data_dir.mkdir(exist_ok=True)
    os.environ["BACKUPS_DATA_DIR"] = str(data_dir)
    try:
        if args.reuse:
            big_ids = list(range(FIRST_INVOICE_ID, FIRST_INVOICE_ID + 2 * BIG_BACKUP))
            counted = work / "invoices"
            if counted.is_file():  # as imported, whatever --invoices says now
                args.invoices = int(counted.read_text())
            print(
                f"Reusing the {args.invoices:,} imported invoices in {work} "
                f"({database_url.split(':')[0]})"
            )
            await forget_jobs(database_url)
        else:
            started = time.perf_counter()
            big_ids = generate_bundle(work, args.invoices)
            await open_database(database_url, migrate=True)
            try:
                await import_bundle(work / "bundle", LocalBlobStore(data_dir))
            finally:
                await close_database()
            (work / "database_url").write_text(database_url)
            (work / "invoices").write_text(str(args.invoices))
            print(
                f"Imported {args.invoices:,} invoices ({CONTRACTS} contracts, {PERIODS} billing "
                f"periods) in {time.perf_counter() - started:.1f} s into "
                f"{database_url.split(':')[0]}"
            )
            if args.prepare_only:
                return 0
        fake = FakeSlack()
        fake.add_user(PM, "pm@example.com", "Dana Reyes")
        await fake.start()
        processes: list[asyncio.subprocess.Process] = []
        try:
            if args.split:  # the jobs run in a process of their own, not in the one timed
                running, _ = await start_serve(
                    fake.api_url, database_url, data_dir, args.workers, **QUICK_STOP
                )
                processes.append(running)
            answering, url = await start_serve(
                fake.api_url,
                database_url,
                data_dir,
                args.workers,
                **QUICK_STOP,
                **({"BACKUPS_RUN_JOBS": "false"} if args.split else {}),
            )
            processes.append(answering)
            if args.pin:
                print(pin_processes(answering.pid, [running.pid, os.getpid()], args.answer_cpu))
            async with aiohttp.ClientSession() as session:
                slack = SlackDriver(session, url, SECRET, fake)
                # Pinned, the timing process runs beside the bot it times: Slack's servers do
                # not share a CPU with the compiles.
                timed = TimedRequests({args.answer_cpu} if args.pin else None)
                await timed.start(url, fake)
                try:
                    return await measure(slack, timed, url, fake, big_ids, args)
                finally:
                    await timed.close()
        finally:
            for process in processes:
                await stop_serve(process)
            await fake.close()
    finally:
        if args.keep or args.reuse:
            print(f"Kept the data for --reuse {work}")
        else:
            if postgres_name is not None:
                await drop_database(args.postgres, postgres_name)
            shutil.rmtree(work, ignore_errors=True)


def pin_processes(answering: int, others: list[int], answer_cpu: int) -> str:
    """`--pin`: the answering bot process on ``answer_cpu``; the job process (with every process
    under it, and so the compiles it forks later) and this bench (the fake Slack taking the
    uploads) on the other CPUs; the process that times the requests, forked later, runs on
    ``answer_cpu`` too (`TimedRequests`). PostgreSQL is left on every CPU. Returns a line saying
    so."""
    rest = os.sched_getaffinity(0) - {answer_cpu}
    for pid in process_tree(answering):
        _pin(pid, {answer_cpu})
    for root in others:
        for pid in process_tree(root):
            _pin(pid, rest)
    return (
        f"Pinned: the answering process and the timing process on CPU {answer_cpu}; the job "
        f"process, its children and the fake Slack on CPU "
        f"{', '.join(map(str, sorted(rest)))}; PostgreSQL on all"
    )


def _pin(pid: int, cpus: set[int]) -> None:
    """Every thread of ``pid`` on ``cpus`` (what it forks later inherits it)."""
    try:
        threads = [int(task.name) for task in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return
    for thread in threads:
        with contextlib.suppress(OSError):  # ended meanwhile
            os.sched_setaffinity(thread, cpus)


async def forget_jobs(database_url: str) -> None:
    """Drop the jobs an earlier run left queued (the submissions sent while measuring): their
    fake Slack is gone, and the bot would work through them before this run's backups."""
    await open_database(database_url)
    try:
        connection = connections.get("default")
        await connection.execute_query("DELETE FROM slack_deliveries")
        await connection.execute_query("DELETE FROM jobs")
    finally:
        await close_database()


def report_inside_the_bot(before: Buckets, after: Buckets) -> None:
    """Per kind, the answers counted by the bot between the snapshots: how many, and the bucket
    bound (ms) that holds the 95th and the 99th percentile."""
    print("  inside the bot (its /metrics; time from the request's arrival to the answer):")
    for kind, bounds in sorted(after.items()):
        earlier = before.get(kind, {})
        counts = {bound: count - earlier.get(bound, 0.0) for bound, count in bounds.items()}
        total = max(counts.values())
        if total:
            p95, p99 = (_within(bound_holding(counts, share)) for share in (0.95, 0.99))
            print(f"    {kind:<16} n {int(total):>4}   p95 {p95:>9}   p99 {p99:>9}")


def _within(bound: float) -> str:
    return "∞" if math.isinf(bound) else f"≤ {bound * 1000:g} ms"


ACK_HISTOGRAM = "invoice_backups_slack_ack_seconds"


class TimedRequests:
    """The timed requests, sent and timed by a process of their own (forked at `start`).

    The fake Slack runs in this process and takes the bot's 32 MB uploads while requests are
    timed; in this process (on its loop, or in a thread waiting for the GIL) a request's answer
    would wait for that work and be counted as the bot's. Slack's servers do not share a
    process with its file uploads either."""

    def __init__(self, cpus: set[int] | None = None) -> None:
        """``cpus``: the CPUs the timing process runs on (None: those of this process)."""
        self._cpus = cpus
        self._connection: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    async def start(self, bot_url: str, fake: FakeSlack) -> None:
        context = multiprocessing.get_context("fork")  # the child starts a loop of its own
        self._connection, theirs = context.Pipe()
        self._process = context.Process(
            target=_send_timed_requests, args=(theirs, bot_url, fake, self._cpus), daemon=True
        )
        self._process.start()
        theirs.close()

    async def command(self, user_id: str) -> Answer:
        return await self._ask("command", user_id, "")

    async def load_options(
        self, user_id: str, view: dict[str, Any], project_id: int, query: str
    ) -> Answer:
        return await self._ask("load_options", user_id, view, project_id, query)

    async def submit(
        self, user_id: str, view: dict[str, Any], project_id: int, chosen: list[dict[str, Any]]
    ) -> Answer:
        return await self._ask("submit", user_id, view, project_id, chosen)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection.send(None)
            self._connection.close()
        if self._process is not None:
            await asyncio.to_thread(self._process.join, 10)

    async def _ask(self, method: str, *args: Any) -> Answer:
        assert self._connection is not None
        self._connection.send((method, args))
        answer = await asyncio.to_thread(self._connection.recv)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _send_timed_requests(
    connection: Connection, bot_url: str, fake: FakeSlack, cpus: set[int] | None
) -> None:
    """The timing process: each request asked for on ``connection`` is sent with a
    `SlackDriver` and its `Answer` (or the error) sent back; None ends it."""
    if cpus is not None:
        os.sched_setaffinity(0, cpus)

    async def serve() -> None:
        async with aiohttp.ClientSession() as session:
            driver = SlackDriver(session, bot_url, SECRET, fake)
            while (asked := connection.recv()) is not None:  # nothing else runs on this loop
                method, args = asked
                try:
                    connection.send(await getattr(driver, method)(*args))
                except Exception as error:
                    connection.send(RuntimeError(f"{method}: {error!r}"))

    asyncio.run(serve())


async def measure(
    slack: SlackDriver,
    timed: TimedRequests,
    bot_url: str,
    fake: FakeSlack,
    big_ids: list[int],
    args: argparse.Namespace,
) -> int:
    view = await slack.open_modal(PM)  # also warms the identity cache and auth.test
    await slack.load_options(PM, view, PROJECT_ID)
    rng = random.Random(7)
    all_ids = list(range(FIRST_INVOICE_ID, FIRST_INVOICE_ID + args.invoices))

    big_started = time.perf_counter()
    for number in range(args.big_backups):
        chunk = (big_ids[:BIG_BACKUP], big_ids[BIG_BACKUP:])[number % 2]
        big_view = {**view, "hash": f"big-{os.getpid()}-{number}"}
        answer = await slack.submit(PM, big_view, PROJECT_ID, [option(i) for i in chunk])
        assert answer.status == 200 and answer.text == "", answer
    await fake.wait_for(lambda: len(fake.top_level_messages()) >= args.big_backups, 60)
    big_parents = fake.top_level_messages()[: args.big_backups]

    def big_backups_done() -> int:
        return sum(1 for parent in big_parents if fake.replies(parent.channel, parent.ts))

    inside_before = await histogram_buckets(bot_url, ACK_HISTOGRAM, "kind")
    under_load: dict[str, list[float]] = defaultdict(list)
    unanswered: dict[str, int] = defaultdict(int)  # Bolt's 3 s ack deadline passed
    kinds = ("command", "options", "submission")
    deadline = time.perf_counter() + args.seconds
    sent = 0
    while time.perf_counter() < deadline and sent < args.requests * len(kinds):
        if sent >= 3 * len(kinds) and big_backups_done() == args.big_backups:
            break
        kind = kinds[sent % len(kinds)]
        if kind == "command":
            answer = await timed.command(PM)
        elif kind == "options":
            answer = await timed.load_options(PM, view, PROJECT_ID, rng.choice(QUERIES))
            assert flatten_options(answer) is not None
        else:
            chosen = [option(i) for i in rng.sample(all_ids, 3)]
            answer = await timed.submit(
                PM, {**view, "hash": f"s{os.getpid()}-{sent}"}, PROJECT_ID, chosen
            )
        if answer.status != 200 and "unhandled request" in answer.text:
            unanswered[kind] += 1
        else:
            assert answer.status == 200, (kind, answer)
        under_load[kind].append(answer.seconds)
        sent += 1
        await asyncio.sleep(args.pause)
    loaded_for = time.perf_counter() - big_started
    inside_after = await histogram_buckets(bot_url, ACK_HISTOGRAM, "kind")
    done_while_measuring = big_backups_done()
    load_during = os.getloadavg()[0]
    await fake.wait_for(lambda: big_backups_done() == args.big_backups, 900)
    big_seconds = time.perf_counter() - big_started
    # Idle means idle: the backups submitted while measuring end first (each gets its reply).
    await fake.wait_for(
        lambda: all(fake.replies(p.channel, p.ts) for p in fake.top_level_messages()), 900
    )

    idle: dict[str, list[float]] = {"options": []}
    by_query: dict[str, list[float]] = defaultdict(list)
    for number in range(args.search_samples):
        query = QUERIES[number % len(QUERIES)]
        answer = await timed.load_options(PM, view, PROJECT_ID, query)
        idle["options"].append(answer.seconds)
        by_query[repr(query)].append(answer.seconds)

    report(
        f"Under load: {sum(map(len, under_load.values()))} signed requests over "
        f"{loaded_for:.1f} s while {BIG_BACKUP}-invoice backups compiled, two at a time "
        f"(BACKUPS_WORKERS={args.workers}"
        f"{'; in another process: the one timed runs no jobs' if args.split else ''}"
        f"{', on a CPU of its own' if args.pin else ''}; "
        f"{done_while_measuring} of {args.big_backups} "
        f"finished by the end of sampling; 1-min load average {load_during:.2f} on "
        f"{os.cpu_count()} cores)",
        under_load,
    )
    report_inside_the_bot(inside_before, inside_after)
    for kind, count in unanswered.items():
        print(f"  {kind}: {count} not acknowledged within Slack's 3 s (counted at their time)")
    report(
        f"Idle: options search with {args.invoices:,} invoices in the project (1-min load "
        f"average {os.getloadavg()[0]:.2f}, other processes of the machine included)",
        idle,
    )
    report("Idle options search, by typed query", by_query)
    first_reply = fake.replies(big_parents[0].channel, big_parents[0].ts)[0].text
    print(f"\n{args.big_backups} large backups took {big_seconds:.1f} s in all; the first:")
    print(f"  {first_reply}")

    worst_ack = max(percentile(values, 0.99) for values in under_load.values())
    search_p95 = max(percentile(under_load["options"], 0.95), percentile(idle["options"], 0.95))
    postgres = bool(args.postgres) or str(args.reuse_url or "").startswith("postgres")
    ack_target = ACK_TARGET_P99["postgres" if postgres else "sqlite"]
    ack_ok = worst_ack <= ack_target
    search_ok = search_p95 <= SEARCH_TARGET_P95
    print(
        f"\nTarget ack p99 ≤ {ack_target * 1000:.0f} ms: worst p99 {worst_ack * 1000:.1f} ms"
        f" → {'met' if ack_ok else 'NOT met'}"
    )
    print(
        f"Target options search p95 ≤ {SEARCH_TARGET_P95 * 1000:.0f} ms: "
        f"{search_p95 * 1000:.1f} ms → {'met' if search_ok else 'NOT met'}"
    )
    median_all = statistics.median(v for values in under_load.values() for v in values)
    print(f"(median of all acks under load: {median_all * 1000:.1f} ms)")
    return 0 if ack_ok and search_ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--invoices", type=int, default=10_000, help="invoices in the project")
    parser.add_argument("--workers", type=int, default=2, help="BACKUPS_WORKERS of the bot")
    parser.add_argument("--big-backups", type=int, default=6, help="100-invoice backups queued")
    parser.add_argument("--requests", type=int, default=300, help="most requests of each kind")
    parser.add_argument("--seconds", type=float, default=60.0, help="longest sampling time")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds between requests")
    parser.add_argument("--search-samples", type=int, default=150, help="idle options loads")
    parser.add_argument(
        "--postgres",
        metavar="SERVER_URL",
        help="use a fresh database on this PostgreSQL server, e.g. "
        "postgres://postgres@127.0.0.1:5432, instead of a SQLite file (dropped afterwards)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the jobs in a second bot process and time one with BACKUPS_RUN_JOBS=false",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="with --split: the timed process on CPU 0 alone, the rest on the other CPUs",
    )
    parser.add_argument("--work-dir", default=str(REPO / "bench" / "_work"))
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated data (and PostgreSQL database)"
    )
    parser.add_argument(
        "--reuse",
        metavar="WORK_DIR",
        help="measure again on the data a --keep run left in WORK_DIR (no generation, no import)",
    )
    parser.add_argument(
        "--prepare-only", action="store_true", help="generate and import (with --keep), no more"
    )
    args = parser.parse_args()
    Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    if args.prepare_only:
        args.keep = True
    args.reuse_url = None
    if args.reuse:
        args.reuse = str(Path(args.reuse).resolve())
        args.reuse_url = (Path(args.reuse) / "database_url").read_text().strip()
    if args.split and not (args.postgres or str(args.reuse_url or "").startswith("postgres")):
        parser.error("--split needs PostgreSQL (processes share the jobs through it)")
    if args.pin and not (args.split and len(os.sched_getaffinity(0)) > 1):
        parser.error("--pin needs --split and at least two CPUs")
    args.answer_cpu = min(os.sched_getaffinity(0))  # with --pin, the answering process's CPU
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
