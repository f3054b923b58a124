"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, a data dir, and the
object stores (the local folder, and a bucket on a real S3 server started once per session).

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); each test gets its own database,
created from ``test`` and dropped afterwards. ``BACKUPS_TEST_PG`` overrides the server URL.
Hypothesis runs under the ``dev`` or ``ci`` profile below (``HYPOTHESIS_PROFILE`` chooses).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings

from storage.blobs import BlobStore, LocalBlobStore, S3BlobStore
from storage.db import close_database, open_database
from tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, new_bucket_name

# Fixtures shared by more than one test directory.
pytest_plugins = ["tests.procore.fixtures", "tests.slack.serve_process"]

# Property tests check rules, not speed: no per-example deadline (a busy machine stalls any
# example now and then). On CI (CI set, as .ci/run is run) the examples are derived from the test
# itself, so that a run's answer depends on the code alone; elsewhere each run explores anew.
settings.register_profile("dev", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Name the random test order at the end of every run, ``-q`` too, so a failure can be
    replayed with ``--randomly-seed``."""
    seed = getattr(config.option, "randomly_seed", None)
    if seed is not None and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(f"test order: --randomly-seed={seed}")


PG_SERVER = os.environ.get("BACKUPS_TEST_PG", "postgres://postgres@127.0.0.1:5432")

DATABASE_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private BACKUPS_DATA_DIR for the test."""
    directory = tmp_path / "data"
    directory.mkdir()
    monkeypatch.setenv("BACKUPS_DATA_DIR", str(directory))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return directory


async def create_postgres_database() -> str:
    """Create an empty database on the test server and return its name."""
    name = f"ib_{uuid.uuid4().hex[:16]}"
    connection = await asyncpg.connect(f"{PG_SERVER}/test")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_postgres_database(name: str) -> None:
    """Drop a database made by `create_postgres_database`."""
    connection = await asyncpg.connect(f"{PG_SERVER}/test")
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@pytest.fixture(params=DATABASE_KINDS)
async def database_url(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The URL of an empty database (SQLite file or PostgreSQL database), set as DATABASE_URL."""
    if request.param == "sqlite":
        url = f"sqlite://{data_dir / 'test.sqlite3'}"
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        return
    name = await create_postgres_database()
    url = f"{PG_SERVER}/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        await drop_postgres_database(name)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """An open, empty database, its schema built by the migrations as in production; closed
    after the test."""
    await open_database(database_url, migrate=True)
    try:
        yield database_url
    finally:
        await close_database()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server for the whole session (started on first use)."""
    server = S3Server(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_store(
    server: S3Server, cache_dir: Path, cache_bytes: int = 64 << 20, bucket: str | None = None
) -> S3BlobStore:
    """A store on ``bucket`` (default: a fresh one) of ``server``, caching in ``cache_dir``."""
    return S3BlobStore(
        bucket or new_bucket_name(),
        endpoint=server.endpoint,
        region=REGION,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        cache_dir=cache_dir,
        cache_bytes=cache_bytes,
    )


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each implementation of the object store in turn: the local folder, an S3 bucket."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "store")
    return s3_store(request.getfixturevalue("s3_server"), tmp_path / "cache")
