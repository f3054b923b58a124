"""A transaction that cannot begin leaves nothing behind (`storage.asyncpg_client`), on a private
PostgreSQL server whose pooled backend the test freezes (SIGSTOP) so that ``BEGIN`` is pending
when the server goes away (SIGKILL: the server restarts) or when the caller gives up (cancel).

Before, the task that tried kept the failed transaction as its connection: after a database
restart every later query of that task failed although the database answered everyone else (a
paused job never resumed); after a cancel, the task's later writes went into a transaction no
one would ever commit, on a connection the pool never got back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from bot.errors import is_database_error
from storage import jobs
from storage.asyncpg_client import AsyncpgClient
from storage.db import close_database, open_database
from storage.schema import CONNECTION
from tests.slack.private_postgres import PrivatePostgres
from tests.waiting import eventually

pytestmark = pytest.mark.postgres


async def open_migrated(server: PrivatePostgres) -> None:
    """Open the server's database, migrated, with one pooled connection."""
    url = f"{server.url}/invoice_backups"
    await open_database(url, migrate=True)
    await close_database()
    await open_database(url)


def pool_client() -> AsyncpgClient:
    client = connections.get(CONNECTION)
    assert isinstance(client, AsyncpgClient)
    return client


async def frozen_backend() -> int:
    """Freeze (SIGSTOP) the backend of the pooled connection the next transaction takes (the
    pool's only live one) and return its pid."""
    client = pool_client()
    _, rows = await client.execute_query("SELECT pg_backend_pid() AS pid")
    assert client._pool is not None and client._pool.get_size() == 1
    pid = int(rows[0]["pid"])
    os.kill(pid, signal.SIGSTOP)
    return pid


async def begin_waits_for(attempt: asyncio.Task[object]) -> None:
    """Wait until ``attempt`` holds the pool's only connection, the frozen one (in the same step
    it sends ``BEGIN``, which the frozen backend does not answer)."""
    pool = pool_client()._pool
    assert pool is not None
    await eventually(lambda: pool.get_idle_size() == 0 or attempt.done(), 30, what="BEGIN sent")
    assert not attempt.done(), attempt


async def try_a_transaction() -> BaseException:
    """Enter a transaction that is expected to fail to begin; return how it failed."""
    try:
        async with in_transaction():
            pass
    except BaseException as error:
        return error
    raise AssertionError("the transaction began")


async def count_when_the_database_answers() -> int:
    """The number of jobs, once the database answers this task again."""

    async def count() -> tuple[int] | None:
        try:
            return (len(await jobs.jobs_with_key_prefix("")),)
        except Exception as error:
            if not is_database_error(error):
                raise
            return None

    (counted,) = await eventually(count, 60, every=0.2, what="a query of this task succeeded")
    return counted


async def all_pool_connections_at_once() -> None:
    """Hold every connection of the pool at once, each in a transaction (none was lost)."""
    client = pool_client()
    held = asyncio.Event()
    holding = 0

    async def hold() -> None:
        nonlocal holding
        async with in_transaction() as connection:
            await connection.execute_query("SELECT 1")
            holding += 1
            if holding == client.pool_maxsize:
                held.set()
            await held.wait()

    async with asyncio.timeout(60):
        await asyncio.gather(*(hold() for _ in range(client.pool_maxsize)))


async def test_after_a_restart_under_begin_the_task_queries_again(
    private_pg: PrivatePostgres,
) -> None:
    await open_migrated(private_pg)

    async def restart_under_begin_then_query() -> int:
        assert is_database_error(await try_a_transaction())
        return await count_when_the_database_answers()

    pid = await frozen_backend()
    # One task, as a paused job: its context must come out of the failed transaction clean.
    task = asyncio.create_task(restart_under_begin_then_query())
    await begin_waits_for(task)
    os.kill(pid, signal.SIGKILL)  # the server restarts (crash recovery)
    assert await task == 0
    await all_pool_connections_at_once()


async def test_a_transaction_cancelled_in_begin_gives_its_connection_back(
    private_pg: PrivatePostgres,
) -> None:
    await open_migrated(private_pg)

    async def cancel_in_begin_then_write() -> None:
        assert isinstance(await try_a_transaction(), asyncio.CancelledError)
        await jobs.enqueue("after-the-cancel", {})

    pid = await frozen_backend()
    task = asyncio.create_task(cancel_in_begin_then_write())
    await begin_waits_for(task)
    task.cancel()  # the cancel reaches the transaction's BEGIN, which the server answers later
    os.kill(pid, signal.SIGCONT)
    await asyncio.wait_for(task, 60)
    # Committed: another task sees it.
    assert [job.idempotency_key for job in await jobs.jobs_with_key_prefix("")] == [
        "after-the-cancel"
    ]
    await all_pool_connections_at_once()


async def test_a_restart_while_the_connection_is_given_back_leaves_the_task_clean(
    private_pg: PrivatePostgres,
) -> None:
    """The transaction ended, its connection's reset (as the pool takes it back) meets a server
    restart: asyncpg raises from the give-back; the task must still come out unbound."""
    await open_migrated(private_pg)

    async def restart_under_give_back_then_query() -> int:
        with contextlib.suppress(Exception):  # the give-back's error, if it reaches the caller
            async with in_transaction() as connection:
                await connection.execute_query("SELECT 1")
                await connection.rollback()  # finalised: leaving only gives the connection back
                protocols.append(connection._connection._con._protocol)
                queries.append(protocols[0].queries_count)
                os.kill(pids[0], signal.SIGSTOP)
        return await count_when_the_database_answers()

    protocols: list[Any] = []
    queries: list[int] = []
    _, rows = await pool_client().execute_query("SELECT pg_backend_pid() AS pid")
    pids = [int(rows[0]["pid"])]
    task = asyncio.create_task(restart_under_give_back_then_query())
    # The reset is sent (the protocol counted it) to the frozen backend; then the server dies.
    await eventually(
        lambda: task.done() or (protocols and protocols[0].queries_count > queries[0]),
        30,
        what="the give-back's reset sent",
    )
    assert not task.done(), task
    os.kill(pids[0], signal.SIGKILL)  # the server restarts (crash recovery)
    assert await asyncio.wait_for(task, 90) == 0
    await all_pool_connections_at_once()
