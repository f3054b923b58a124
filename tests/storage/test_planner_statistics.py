"""SQLite has no statistics of its own: without them its planner reads a whole project's
invoices through the ``project_id`` index to find a few ids, seconds at 100,000 invoices while
every other statement waits on the one connection. The database keeps them (issue 12)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tortoise import connections

from commands.demo import PROJECT_ID, write_demo_bundle
from commands.import_bundle import import_bundle
from storage.blobs import LocalBlobStore
from storage.db import close_database, open_database

# The shape of `commands.access.visible_invoice_ids` (a submission's check).
SOME_INVOICES = (
    "EXPLAIN QUERY PLAN SELECT id FROM invoices WHERE project_id = ? "
    "AND commitment_id IN (?, ?, ?) AND id IN (?, ?, ?)"
)


async def _plan() -> str:
    connection = connections.get("default")
    _, rows = await connection.execute_query(
        SOME_INVOICES, [PROJECT_ID, 301, 302, 303, 9001, 9011, 9021]
    )
    return " / ".join(str(row["detail"]) for row in rows)


@asynccontextmanager
async def demo_imported(data_dir: Path, bundle_dir: Path) -> AsyncIterator[str]:
    """A new SQLite database in ``data_dir`` holding the demo bundle, open; yields its URL."""
    url = f"sqlite://{data_dir / 'plans.sqlite3'}"
    await open_database(url, migrate=True)
    try:
        await import_bundle(write_demo_bundle(bundle_dir), LocalBlobStore(data_dir))
        yield url
    finally:
        await close_database()


async def test_sqlite_looks_invoices_up_by_key_after_an_import(
    data_dir: Path, tmp_path: Path
) -> None:
    async with demo_imported(data_dir, tmp_path / "bundle"):
        plan = await _plan()
        assert "(id=?)" in plan, plan


async def test_a_sqlite_database_without_statistics_gets_them_when_opened(
    data_dir: Path, tmp_path: Path
) -> None:
    async with demo_imported(data_dir, tmp_path / "bundle") as url:
        await connections.get("default").execute_query("DROP TABLE sqlite_stat1")
    with sqlite3.connect(data_dir / "plans.sqlite3") as plain:  # as before this change
        rows = plain.execute(SOME_INVOICES, [PROJECT_ID, 301, 302, 303, 9001, 9011, 9021])
        assert "(id=?)" not in " / ".join(str(row[3]) for row in rows)
    await open_database(url)
    try:
        plan = await _plan()
        assert "(id=?)" in plan, plan
    finally:
        await close_database()
