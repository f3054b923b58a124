"""Where the time of one options search goes, in process, on a project `ack_latency` imported.

Run: ``.venv/bin/python bench/search.py WORK_DIR`` where WORK_DIR is what
``bench/ack_latency.py --invoices 100000 --prepare-only`` (or ``--keep``) left: its SQLite file
or PostgreSQL database. For every query of `bench.ack_latency.QUERIES` it times, separately,
the access check (`compile_access`), the search itself (`commands.invoice_search
.search_invoices`: index queries and the count of further matches) and the labels, then the
whole `search_invoice_options`; p50/p95 per part over all queries, the target (options search
p95 ≤ 50 ms, issue 12) against the whole's p95 (exit 1 when missed). The HTTP figures (idle and
under load) are `ack_latency`'s; this one says which part to blame. The machine may be shared:
the load average is printed, and figures that do not depend on it: per query, the statements
the search sends and their time inside the database (PostgreSQL: EXPLAIN ANALYZE planning +
execution; SQLite: the statement timed alone).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ack_latency import PROJECT_ID, QUERIES, percentile  # noqa: E402
from commands.access import (  # noqa: E402
    Requester,
    _invoice_options,
    compile_access,
    search_invoice_options,
)
from commands.invoice_search import search_invoices  # noqa: E402
from storage.db import close_database, open_database  # noqa: E402
from storage.search_index import search_connection  # noqa: E402

PM = Requester("bench", "pm@example.com", "Dana Reyes")
SEARCH_TARGET_P95 = 0.050


async def database_times(commitment_ids: frozenset[int]) -> None:
    """Per query: the statements `search_invoices` sends and each one's time in the database."""
    connection = search_connection()
    postgres = connection.capabilities.dialect == "postgres"
    execute = connection.execute_query
    sent: list[tuple[str, Any]] = []

    async def recording(sql: str, values: Any = None) -> Any:
        sent.append((sql, values))
        return await execute(sql, values)

    connection.execute_query = recording  # type: ignore[method-assign]
    print(f"  {'query':<16} {'statements':>10} {'db ms':>8}  (each)")
    try:
        for query in QUERIES:
            sent.clear()
            await search_invoices(PROJECT_ID, commitment_ids, query, 100)
            times = []
            for sql, values in list(sent):
                if postgres:
                    _, rows = await execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", values)
                    plan = rows[0]["QUERY PLAN"]
                    plan = json.loads(plan) if isinstance(plan, str) else plan
                    times.append(plan[0]["Planning Time"] + plan[0]["Execution Time"])
                else:
                    started = time.perf_counter()
                    await execute(sql, values)
                    times.append((time.perf_counter() - started) * 1000)
            each = ", ".join(f"{t:.1f}" for t in times)
            print(f"  {query!r:<16} {len(times):>10} {sum(times):>8.1f}  ({each})")
    finally:
        connection.execute_query = execute  # type: ignore[method-assign]


async def run(database_url: str, rounds: int) -> int:
    await open_database(database_url)
    try:
        parts: dict[str, list[float]] = defaultdict(list)
        by_query: dict[str, list[float]] = defaultdict(list)
        for _ in range(rounds):
            for query in QUERIES:
                started = time.perf_counter()
                access = await compile_access(PM, PROJECT_ID)
                checked = time.perf_counter()
                matches = await search_invoices(
                    PROJECT_ID, access.compilable_commitment_ids, query, 100
                )
                searched = time.perf_counter()
                await _invoice_options(matches.invoice_ids)
                labelled = time.perf_counter()
                await search_invoice_options(PM, PROJECT_ID, query)
                whole = time.perf_counter() - labelled
                parts["access"].append(checked - started)
                parts["search"].append(searched - checked)
                parts["labels"].append(labelled - searched)
                parts["whole"].append(whole)
                by_query[repr(query)].append(searched - checked)
        print(f"In the database, 1-min load average {os.getloadavg()[0]:.2f}")
        await database_times(access.compilable_commitment_ids)
    finally:
        await close_database()
    print(f"{database_url.split(':')[0]}, 1-min load average {os.getloadavg()[0]:.2f}")
    print(f"  {'part':<16} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for name, values in [*parts.items(), *(("search " + q, v) for q, v in by_query.items())]:
        print(
            f"  {name:<16} {len(values):>5} {percentile(values, 0.5) * 1000:>8.1f}"
            f" {percentile(values, 0.95) * 1000:>8.1f} {max(values) * 1000:>8.1f}"
        )
    whole = percentile(parts["whole"], 0.95)
    met = whole <= SEARCH_TARGET_P95
    print(
        f"Target options search p95 ≤ {SEARCH_TARGET_P95 * 1000:.0f} ms (in process, no HTTP): "
        f"{whole * 1000:.1f} ms → {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work_dir", help="a folder ack_latency kept (--keep, --prepare-only)")
    parser.add_argument("--rounds", type=int, default=10, help="times every query is run")
    args = parser.parse_args()
    database_url = (Path(args.work_dir) / "database_url").read_text().strip()
    return asyncio.run(run(database_url, args.rounds))


if __name__ == "__main__":
    raise SystemExit(main())
