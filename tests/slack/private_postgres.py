"""A private PostgreSQL server for tests that stop and start it (never the shared one on 5432).

`PrivatePostgres` runs ``initdb`` into a fresh temp dir and ``pg_ctl`` on a free port, listening
on 127.0.0.1 with trust auth (should another process take the port before the server binds it,
the first start tries again on another one). When the tests run as root (CI), the server runs as
the ``postgres`` OS user through ``runuser`` (PostgreSQL refuses to run as root). `available`
says whether the machine can do it. The `private_pg` fixture (a plugin of ``tests/conftest.py``)
gives a test one such server, started, with a database ``invoice_backups``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from storage.db import close_database
from tests.server_ports import free_ports, log_size, logged_since, start_on_free_ports

SERVER_USER = "postgres"
PORT_TAKEN = "Address already in use"  # what the server logs before it gives up


def _bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries on the machine (Debian layout first)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_server_user() -> list[str]:
    return ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []


def available() -> str | None:
    """None when a private server can be started here, else why not."""
    if _bin_dir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root without runuser"
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} OS user"
    return None


class PrivatePostgres:
    """One throw-away server: `start`, `stop`, `start` again, `destroy`."""

    def __init__(self) -> None:
        bin_dir = _bin_dir()
        assert bin_dir is not None, available()
        self._bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="ib-private-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        [self.port] = free_ports(1)  # the first `start` may change it
        self._started = False  # once started, the port stays (clients hold the URL)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")

    @property
    def url(self) -> str:
        """Server URL without a database (append ``/name``)."""
        return f"postgres://postgres@127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections.

        The first start moves to another port when its port was taken since it was chosen (the
        server exits, saying so in its log); a restart keeps it (`tests.server_ports`)."""

        def move() -> None:
            [self.port] = free_ports(1)

        start_on_free_ports(self._launch, move, first=not self._started, log=self.log)
        self._started = True

    def _launch(self) -> bool:
        """``pg_ctl start`` on ``port``: True once the server accepts connections, False when
        it exited because the port is taken; RuntimeError when it fails otherwise."""
        logged = log_size(self.log)
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start"
            )
        except RuntimeError:
            if PORT_TAKEN.encode() in logged_since(self.log, logged):
                return False
            raise
        return True

    def stop(self) -> None:
        """Stop the server, disconnecting every client (a restart's first half)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and delete everything."""
        subprocess.run(
            [
                *_as_server_user(),
                str(self._bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [*_as_server_user(), str(self._bin / program), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")


@pytest.fixture
async def private_pg(data_dir: Path) -> AsyncIterator[PrivatePostgres]:
    """A private server the test may restart, with a database ``invoice_backups``."""
    reason = available()
    if reason is not None:
        pytest.fail(f"cannot run a private PostgreSQL server: {reason}")
    server = await asyncio.to_thread(PrivatePostgres)
    try:
        await asyncio.to_thread(server.start)
        connection = await asyncpg.connect(f"{server.url}/postgres")
        await connection.execute("CREATE DATABASE invoice_backups")
        await connection.close()
        yield server
    finally:
        await close_database()
        await asyncio.to_thread(server.destroy)
