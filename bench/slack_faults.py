"""A Slack fault storm at scale: 50 backups while the fake Slack injects 1,000 faults.
Run: ``.venv/bin/python bench/slack_faults.py`` (``--help`` for options). It
1. migrates a fresh SQLite database in a temporary folder (or ``--database-url``, e.g. an empty
   PostgreSQL database) and imports the demo bundle;
2. starts the fake Slack Web API (tests/slack/fake_slack.py) and the real bot here, HTTP mode,
   with a short Slack timeout (``--timeout``), and a `FaultStorm` of ``--faults`` faults: 429
   with Retry-After, 500, 503, timeouts (hangs longer than the bot's timeout) and connection
   resets — half of the last two after Slack did the work — in every Web API method the bot
   calls and on the upload URL;
3. asks for ``--backups`` backups as ``--users`` users side by side would (slash command, modal,
   options, Compile; submitting again when Slack would have shown an error), and waits for
   every job to end.
It prints the faults by kind and method, the bot's retries, the posts and uploads found done
after an ambiguous failure (so not sent again), the Retry-After gaps and the wall time, and
exits non-zero unless every backup ended with exactly one parent message, one file in its
thread and one final reply, nothing else was posted, and no request was sent again before its
Retry-After. Everything runs on 127.0.0.1 and stops by itself. The machine may be shared: the
load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from bot.metrics import SLACK_RETRIES  # noqa: E402
from bot.server import BotServer  # noqa: E402
from bot.settings import Settings  # noqa: E402
from commands.demo import PROJECT_ID, write_demo_bundle  # noqa: E402
from commands.import_bundle import import_bundle  # noqa: E402
from storage.blobs import LocalBlobStore  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from storage.jobs import Job, JobStatus  # noqa: E402
from tests.slack.fake_slack import FakeSlack, FaultStorm  # noqa: E402
from tests.slack.fault_storm import (  # noqa: E402
    IN_FLIGHT,
    SELECTIONS,
    ask_for_backup,
    delivery_problems,
    retry_after_report,
)
from tests.slack.slack_driver import SlackDriver  # noqa: E402

PM = "U0PM"
SECRET = "bench-signing-secret"


class _Found(logging.Handler):
    """Counts what `bot.delivery.exactly_once` logs: posts and uploads that failed (``tried``
    again) and those found done after a timeout or reset instead of being sent again."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.tried = 0
        self.found = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.found += "went through after all" in message
        self.tried += "trying again" in message


def _retries() -> Counter[str]:
    """The bot's Slack retries so far, by reason (`bot.metrics.SLACK_RETRIES`)."""
    counted: Counter[str] = Counter()
    for metric in SLACK_RETRIES.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                counted[sample.labels["reason"]] += int(sample.value)
    return counted


async def _all_ended(count: int, within: float) -> list[Job]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        jobs = await Job.all().order_by("id")
        if sum(j.status in (JobStatus.SUCCEEDED, JobStatus.FAILED) for j in jobs) >= count:
            return jobs
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{count} jobs did not end within {within:.0f} s")


async def run(args: argparse.Namespace, folder: Path) -> int:
    os.environ["BACKUPS_DATA_DIR"] = str(folder / "data")
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
    await open_database(args.database_url or None, migrate=True)
    await import_bundle(write_demo_bundle(folder / "bundle"), LocalBlobStore(folder / "data"))
    fake = FakeSlack()
    fake.add_user(PM, "pm@example.com", "Dana Reyes")
    fake.set_channel_members("C_JOBSITE", [PM])
    await fake.start()
    found = _Found()
    delivery_log = logging.getLogger("bot.delivery")
    delivery_log.addHandler(found)
    delivery_log.setLevel(logging.INFO)
    delivery_log.propagate = False  # counted, not printed
    settings = Settings(
        bot_token="xoxb-bench-token",
        signing_secret=SECRET,
        api_url=fake.api_url,
        host="127.0.0.1",
        port=0,
        workers=args.workers,
        slack_timeout_seconds=args.timeout,
    )
    server = BotServer(settings, worker_options={"poll_seconds": 0.2, "progress_interval": 0.5})
    await server.start()
    storm = fake.start_storm(
        FaultStorm(args.faults, rate=args.rate, hang_seconds=args.timeout + 1.5, seed=args.seed)
    )
    retried_before = _retries()
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            slack = SlackDriver(session, server.url, SECRET, fake)
            numbers = iter(range(args.backups))

            async def lane() -> None:  # a user asking for backups one after another
                for number in numbers:
                    selection = SELECTIONS[number % len(SELECTIONS)]
                    await ask_for_backup(slack, fake, PM, PROJECT_ID, selection)

            await asyncio.gather(*(lane() for _ in range(args.users)))
            asked = time.monotonic() - started
            jobs = await _all_ended(args.backups, within=args.backups * 30)
        wall = time.monotonic() - started
        problems = await delivery_problems(fake, jobs)
    finally:
        await server.stop()
        await fake.close()
        await close_database()
    retries = _retries() - retried_before
    report = retry_after_report(storm)
    succeeded = sum(job.status == JobStatus.SUCCEEDED for job in jobs)

    print(f"backups: {len(jobs)} ({succeeded} succeeded); bot workers {args.workers}")
    print(f"wall time: {wall:.1f} s (all asked for after {asked:.1f} s)")
    print(f"calls received by the fake: {len(storm.arrivals)}; faults: {len(storm.faults)}")
    print("faults by kind: " + ", ".join(f"{k} {n}" for k, n in storm.by_kind().most_common()))
    print("faults by method:")
    for method, count in storm.by_method().most_common():
        print(f"  {method:32} {count}")
    print("bot retries (slack_sdk handlers): " + ", ".join(f"{k} {n}" for k, n in retries.items()))
    print(
        f"posts/uploads failed after the client's retries: {found.tried}; of those found done "
        f"in Slack after a timeout or reset (so not sent again): {found.found}"
    )
    same = [gap for _, gap in report.again if gap >= IN_FLIGHT]
    wide = [gap for _, gap in report.method_wide if gap >= IN_FLIGHT]
    print(
        f"Retry-After {report.retry_after} s, {report.rate_limited} 429s. Same request sent "
        f"again: {len(report.again)}, after min {min(same, default=0):.2f} s / median "
        f"{_median(same):.2f} s, {len(report.too_soon)} too soon "
        f"({len(report.again) - len(same)} identical requests already in flight). Next call "
        f"of the method: min {min(wide, default=0):.2f} s, {len(report.method_too_soon)} too "
        f"soon ({report.in_flight} already in flight, < {IN_FLIGHT} s)"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failures = problems + [f"sent again too soon after a 429: {report.too_soon}"] * bool(
        report.too_soon
    )
    for problem in failures:
        print(f"FAIL: {problem}")
    print("OK: every backup delivered exactly once" if not failures else "FAILED")
    return 0 if not failures else 1


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backups", type=int, default=50)
    parser.add_argument("--faults", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.9, help="fault probability per call")
    parser.add_argument("--timeout", type=float, default=2.0, help="the bot's Slack timeout")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--users", type=int, default=4, help="users asking side by side")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--database-url", default="", help="an empty database (default SQLite)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="slack-faults-") as folder:
        return asyncio.run(run(args, Path(folder)))


if __name__ == "__main__":
    sys.exit(main())
