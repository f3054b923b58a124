"""Database lifecycle: which database (``DATABASE_URL``), opening and closing it.

SQLite under ``BACKUPS_DATA_DIR`` is the embedded default; ``postgres://…`` works the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from tortoise import Tortoise
from tortoise.backends.base.executor import EXECUTOR_CACHE

MODEL_MODULES: list[str] = [
    "storage.models",
    "storage.jobs",
    "storage.links",
    "storage.audit",
    "storage.schedules",
]


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


async def open_database(url: str | None = None, *, create_schema: bool = True) -> None:
    """Connect to the database and, unless told otherwise, create missing tables."""
    # Tortoise caches built SQL per connection name ("default"), not per dialect: clear it so a
    # process that switches databases (tests: SQLite then PostgreSQL) never reuses the wrong SQL.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(
        db_url=url or database_url(),
        modules={"models": MODEL_MODULES},
        _enable_global_fallback=True,
    )
    if create_schema:
        await Tortoise.generate_schemas(safe=True)


async def close_database() -> None:
    """Close every connection opened by `open_database`."""
    await Tortoise.close_connections()
    EXECUTOR_CACHE.clear()
