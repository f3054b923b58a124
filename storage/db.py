"""Database lifecycle: which database (``DATABASE_URL``), opening and closing it.

SQLite under ``BACKUPS_DATA_DIR`` is the embedded default; ``postgres://…`` works the same.
Tables come from the migrations (`storage.schema`), never from the models directly. The ORM is
imported when a database is opened, not with this module (`data_dir` needs none of it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tortoise.backends.base.client import BaseDBAsyncClient

__all__ = [
    "close_database",
    "data_dir",
    "database_url",
    "open_database",
    "refresh_planner_statistics",
]

# Rows ANALYZE samples per index on SQLite: statistics in tens of milliseconds at 100,000
# invoices, good enough for the planner to see that ``project_id`` does not narrow much.
SQLITE_ANALYSIS_LIMIT = 1000


def data_dir() -> Path:
    """The folder holding the SQLite file, blobs and compiled backups."""
    return Path(os.environ.get("BACKUPS_DATA_DIR", "./data")).resolve()


def database_url() -> str:
    """``DATABASE_URL`` if set, else a SQLite file in the data dir."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        if url.startswith("postgresql://"):
            url = "postgres://" + url.removeprefix("postgresql://")
        return url
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite://{directory / 'invoice-backups.sqlite3'}"


async def open_database(
    url: str | None = None, *, migrate: bool = False, check_schema: bool = True
) -> list[str]:
    """Connect to the database (``url``, default `database_url`).

    With ``migrate``, apply the pending migrations and return their names; otherwise, unless
    ``check_schema`` is False, raise `storage.schema.SchemaOutdated` (connection closed) while a
    migration is pending. Never creates tables any other way. A SQLite database without
    planner statistics gets them (`refresh_planner_statistics`).
    """
    from tortoise import Tortoise, connections
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from storage.schema import (
        CONNECTION,
        apply_migrations,
        ensure_current_schema,
        tortoise_config,
    )

    # Tortoise caches built SQL per connection name ("default"), not per dialect: clear it so a
    # process that switches databases (tests: SQLite then PostgreSQL) never reuses the wrong SQL.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(url or database_url()), _enable_global_fallback=True)
    try:
        applied = await apply_migrations() if migrate else []
        if check_schema and not migrate:
            await ensure_current_schema()
        connection = connections.get(CONNECTION)
        if connection.capabilities.dialect == "sqlite" and not await _has_statistics(connection):
            await refresh_planner_statistics(connection)
    except BaseException:
        await close_database()
        raise
    return applied


async def refresh_planner_statistics(
    connection: BaseDBAsyncClient, written_table: str | None = None
) -> None:
    """Give the query planner current statistics (``ANALYZE``). SQLite has none of its own:
    without them it guesses that ``project_id = ?`` picks a few rows and reads a whole
    project's invoices through that index instead of looking 100 ids up by key: seconds at
    100,000 invoices, while every other statement (acks too) waits on the one connection; the
    whole database is analysed (sampled). PostgreSQL keeps its own (autovacuum), but late:
    ``written_table`` is analysed now. Call it after writing many rows (a project's whole
    search index is rebuilt); `open_database` calls it when a SQLite database has none yet."""
    if connection.capabilities.dialect != "sqlite":
        if written_table is not None:
            await connection.execute_query(f"ANALYZE {written_table}")
        return
    await connection.execute_query(f"PRAGMA analysis_limit = {SQLITE_ANALYSIS_LIMIT}")
    await connection.execute_query("ANALYZE")


async def _has_statistics(connection: BaseDBAsyncClient) -> bool:
    _, rows = await connection.execute_query(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    )
    return bool(rows)


async def close_database() -> None:
    """Close every connection opened by `open_database`."""
    from tortoise import Tortoise
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()
