"""Database lifecycle: which database (``DATABASE_URL``), opening and closing it.

SQLite under ``BACKUPS_DATA_DIR`` is the embedded default; ``postgres://…`` works the same.
Tables come from the migrations (`storage.schema`), never from the models directly. The ORM is
imported when a database is opened, not with this module (`data_dir` needs none of it).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["close_database", "data_dir", "database_url", "open_database"]


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
    migration is pending. Never creates tables any other way.
    """
    from tortoise import Tortoise
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from storage.schema import apply_migrations, ensure_current_schema, tortoise_config

    # Tortoise caches built SQL per connection name ("default"), not per dialect: clear it so a
    # process that switches databases (tests: SQLite then PostgreSQL) never reuses the wrong SQL.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(url or database_url()), _enable_global_fallback=True)
    try:
        if migrate:
            return await apply_migrations()
        if check_schema:
            await ensure_current_schema()
    except BaseException:
        await close_database()
        raise
    return []


async def close_database() -> None:
    """Close every connection opened by `open_database`."""
    from tortoise import Tortoise
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()
