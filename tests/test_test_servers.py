"""The servers the tests start choose free ports, then start on them: should another process take
one in between (a busy CI machine), the first start moves to fresh ports instead of failing.
SeaweedFS (`tests.s3_server`) and the private PostgreSQL (`tests.slack.private_postgres`)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import obstore
import pytest

from tests import s3_server
from tests.s3_server import S3Server, new_bucket_name, raw_store
from tests.slack import private_postgres
from tests.slack.private_postgres import PrivatePostgres


@contextmanager
def taken(port: int) -> Iterator[None]:
    """``port`` on 127.0.0.1 held by a listening socket: another process took it."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past a closed server's
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield


@pytest.mark.parametrize("which", ["master", "s3"])  # the port weed binds first, and last
def test_the_s3_server_starts_on_fresh_ports_when_a_chosen_one_was_taken(
    which: str, tmp_path: Path
) -> None:
    server = S3Server(tmp_path / "s3")
    chosen = server.ports
    try:
        with taken(getattr(chosen, which)):
            server.start()
        assert getattr(chosen, which) not in server.ports
        assert s3_server.PORT_TAKEN in (tmp_path / "s3" / "weed.log").read_bytes()
        store = raw_store(server.endpoint, new_bucket_name())
        obstore.put(store, "object", b"stored")
        assert bytes(obstore.get(store, "object").bytes()) == b"stored"
    finally:
        server.stop()


async def test_the_private_postgres_starts_on_another_port_when_its_port_was_taken() -> None:
    reason = private_postgres.available()
    if reason is not None:
        pytest.fail(f"cannot run a private PostgreSQL server: {reason}")
    server = await asyncio.to_thread(PrivatePostgres)
    try:
        chosen = server.port
        with taken(chosen):
            await asyncio.to_thread(server.start)
        assert server.port != chosen
        assert private_postgres.PORT_TAKEN in server.log.read_text()
        connection = await asyncpg.connect(f"{server.url}/postgres")
        assert await connection.fetchval("SELECT 1") == 1
        await connection.close()

        # A restart keeps its port (clients hold the URL): taken, it fails rather than move.
        await asyncio.to_thread(server.stop)
        with taken(server.port), pytest.raises(RuntimeError, match="is taken"):
            await asyncio.to_thread(server.start)
        await asyncio.to_thread(server.start)
        connection = await asyncpg.connect(f"{server.url}/postgres")
        await connection.close()
    finally:
        await asyncio.to_thread(server.destroy)
