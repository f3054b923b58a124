"""Shared fixtures: a fresh database per test on SQLite and on PostgreSQL, a data dir, and the
object stores (the local folder, and a bucket on a real S3 server started once per session).

PostgreSQL is the server on 127.0.0.1:5432 (trust auth); each test gets its own database,
created from ``test`` and dropped afterwards. ``BACKUPS_TEST_PG`` overrides the server URL.
A migrated database (`database`) is a copy of a template the real migrations built once per
session and kind (`sqlite_template`, `postgres_template`): migrating each test's database anew
took most of a database test's time. The tests of the migrations themselves start from an
empty database (`database_url` without `database`).
Hypothesis runs under the ``dev`` or ``ci`` profile below (``HYPOTHESIS_PROFILE`` chooses).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from hypothesis import settings

from commands.demo import write_demo_bundle
from storage.blobs import BlobStore, LocalBlobStore, S3BlobStore
from storage.db import close_database, open_database
from tests.s3_server import S3Server, bucket_store, new_bucket_name

# Fixtures shared by more than one test directory.
pytest_plugins = [
    "tests.procore.fixtures",
    "tests.slack.serve_process",
    "tests.slack.private_postgres",
]

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


T = TypeVar("T")

PG_SERVER = os.environ.get("BACKUPS_TEST_PG", "postgres://postgres@127.0.0.1:5432")

DATABASE_KINDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bundle's folder, written once per session: read-only (a test that wants another
    bundle writes or copies its own)."""
    return write_demo_bundle(tmp_path_factory.mktemp("bundle") / "demo")


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private BACKUPS_DATA_DIR for the test."""
    directory = tmp_path / "data"
    directory.mkdir()
    monkeypatch.setenv("BACKUPS_DATA_DIR", str(directory))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return directory


async def create_postgres_database(template: str | None = None) -> str:
    """Create a database on the test server, empty or a copy of ``template``; return its name."""
    name = f"ib_{uuid.uuid4().hex[:16]}"
    copy_of = f' TEMPLATE "{template}"' if template else ""
    connection = await asyncpg.connect(f"{PG_SERVER}/test")
    try:
        await connection.execute(f'CREATE DATABASE "{name}"{copy_of}')
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


def in_own_loop(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to the end in a thread with an event loop of its own: a session fixture
    must not share (or need) the loop of the test that first asks for it."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work).result()


async def migrated(url: str) -> None:
    """Apply every migration to the empty database at ``url`` (as `invoice-backups migrate`)."""
    await open_database(url, migrate=True)
    await close_database()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session (read-only: `database_url` copies it)."""
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    in_own_loop(migrated(f"sqlite://{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A PostgreSQL database migrated once per session (`database_url` creates copies of it;
    nothing connects to it after the migrations); dropped at the end of the session."""
    name = in_own_loop(create_postgres_database())
    try:
        in_own_loop(migrated(f"{PG_SERVER}/{name}"))
        yield name
    finally:
        in_own_loop(drop_postgres_database(name))


class BackgroundDrops:
    """Drops test databases in a thread of its own, those queued meanwhile side by side: a DROP
    DATABASE waits for a PostgreSQL checkpoint (a second or more on a busy machine), drops sent
    together share one, and no test needs to wait for any. `finish` waits for every drop and
    raises if one failed."""

    AT_ONCE = 8  # connections one batch uses at most (the server is shared)

    def __init__(self) -> None:
        self._queued: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._finishing = False
        self._failures: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="drop-test-databases", daemon=True)
        self._thread.start()

    def drop(self, name: str) -> None:
        """Queue the drop of database ``name`` (its connections are closed or forced off)."""
        with self._lock:
            self._queued.append(name)
        self._wake.set()

    def finish(self) -> None:
        with self._lock:
            self._finishing = True
        self._wake.set()
        self._thread.join()
        if self._failures:
            failures = self._failures
            raise RuntimeError(f"{len(failures)} test database(s) not dropped: {failures[0]!r}")

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch, self._queued = self._queued, []
                finishing = self._finishing
            if batch:
                asyncio.run(self._drop_together(batch))
            if finishing:
                return

    async def _drop_together(self, names: list[str]) -> None:
        slots = asyncio.Semaphore(self.AT_ONCE)

        async def drop(name: str) -> None:
            async with slots:
                await drop_postgres_database(name)

        results = await asyncio.gather(*(drop(name) for name in names), return_exceptions=True)
        self._failures += [result for result in results if isinstance(result, BaseException)]


@pytest.fixture(scope="session")
def background_drops() -> Iterator[BackgroundDrops]:
    """Where `database_url` drops its PostgreSQL databases (all dropped by the session's end)."""
    drops = BackgroundDrops()
    try:
        yield drops
    finally:
        drops.finish()


@pytest.fixture(params=DATABASE_KINDS)
async def database_url(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The URL of a database (SQLite file or PostgreSQL database), set as DATABASE_URL: empty,
    or, when the test uses `database`, a copy of the session's migrated template."""
    wants_schema = "database" in request.fixturenames
    if request.param == "sqlite":
        path = data_dir / "test.sqlite3"
        if wants_schema:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite://{path}"
        monkeypatch.setenv("DATABASE_URL", url)
        yield url
        return
    template = request.getfixturevalue("postgres_template") if wants_schema else None
    drops: BackgroundDrops = request.getfixturevalue("background_drops")
    name = await create_postgres_database(template)
    url = f"{PG_SERVER}/{name}"
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        drops.drop(name)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[str]:
    """An open, empty database, its schema built by the migrations as in production (once per
    session: a copy of the template, `database_url`); closed after the test."""
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
    return bucket_store(server.endpoint, bucket or new_bucket_name(), cache_dir, cache_bytes)


@pytest.fixture(params=["local", "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Each implementation of the object store in turn: the local folder, an S3 bucket."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "store")
    return s3_store(request.getfixturevalue("s3_server"), tmp_path / "cache")
