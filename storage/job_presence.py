"""A job worker's presence on PostgreSQL: one dedicated connection that

- holds a session-level advisory lock keyed by the worker's owner id (`storage.jobs.owner_lock_key`)
  for as long as the worker lives; PostgreSQL frees it the moment that connection dies (process
  killed, host gone), which lets other workers take the worker's running jobs over at once
  (`storage.jobs.claim_next`) instead of waiting out a lease;
- ``LISTEN``s for `storage.jobs.NOTIFY_CHANNEL`, so a job queued by any process wakes this worker.

When the connection drops, `lock_key` is None (claims fall back to the lease) until a reconnection
takes the lock again; the worker is woken then, since notifications may have been missed. Right
after a reconnection, a worker does not yet take other owners' jobs over (`takes_over` is False
for `TAKEOVER_GRACE_SECONDS`): after a database restart every live worker needs a moment to take
its lock again, and a free lock means "dead" only once it has had that moment. On SQLite there is
nothing to do: `start` returns False.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from typing import Any

import asyncpg
from tortoise import connections

from storage.jobs import NOTIFY_CHANNEL, owner_lock_key
from storage.schema import CONNECTION

log = logging.getLogger(__name__)

RECONNECT_SECONDS = (0.5, 5.0)  # first and longest wait between reconnection attempts
CHECK_SECONDS = 1.0  # how often the connection's health is checked
# Longer than the longest reconnection wait plus a connection: a live worker has its lock back.
TAKEOVER_GRACE_SECONDS = 15.0


class WorkerPresence:
    """Keep ``owner`` visibly alive in PostgreSQL and call ``wake()`` when a job is queued."""

    def __init__(self, owner: str, wake: Callable[[], None]) -> None:
        self.owner = owner
        self._key = owner_lock_key(owner)
        self._wake = wake
        self._parameters: dict[str, Any] | None = None
        self._connection: asyncpg.Connection | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.lock_key: int | None = None  # the key held right now (None: not held)
        self._held_since = 0.0

    async def start(self) -> bool:
        """On PostgreSQL, connect, take the lock and listen (retrying in the background when the
        database does not answer now); return False on other databases."""
        client = connections.get(CONNECTION)
        if client.capabilities.dialect != "postgres":
            return False
        self._parameters = {
            "host": client.host,
            "port": client.port,
            "user": client.user,
            "password": client.password,
            "database": client.database,
        }
        with contextlib.suppress(Exception):
            await self._connect(first=True)
        self._keeper = asyncio.create_task(self._keep(), name="job-presence")
        return True

    @property
    def takes_over(self) -> bool:
        """Whether this worker may take a dead owner's jobs over now: it has held its own lock
        for `TAKEOVER_GRACE_SECONDS`."""
        held_for = asyncio.get_running_loop().time() - self._held_since
        return self.lock_key is not None and held_for >= TAKEOVER_GRACE_SECONDS

    async def close(self) -> None:
        """Stop; closing the connection releases the lock."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        await self._disconnect()

    async def _connect(self, *, first: bool = False) -> None:
        assert self._parameters is not None
        connection = await asyncpg.connect(timeout=10, **self._parameters)
        try:
            await connection.execute("SELECT pg_advisory_lock($1)", self._key)
            await connection.add_listener(NOTIFY_CHANNEL, self._notified)
            connection.add_termination_listener(self._terminated)
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        self.lock_key = self._key
        self._held_since = -math.inf if first else asyncio.get_running_loop().time()
        self._wake()

    def _terminated(self, connection: Any) -> None:
        if connection is self._connection:
            self.lock_key = None

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self.lock_key = None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await connection.close(timeout=2)

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self._wake()

    async def _keep(self) -> None:
        """Check the connection; when it is lost, reconnect (waiting longer each time)."""
        delay, longest = RECONNECT_SECONDS
        while True:
            connection = self._connection
            if connection is not None:
                try:
                    await asyncio.wait_for(connection.fetchval("SELECT 1"), CHECK_SECONDS * 5)
                    delay = RECONNECT_SECONDS[0]
                    await asyncio.sleep(CHECK_SECONDS)
                    continue
                except Exception as error:
                    log.warning("job worker presence lost (%s); reconnecting", error)
                    await self._disconnect()
            try:
                await self._connect()
                log.info("job worker presence restored")
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
