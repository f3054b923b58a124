"""The PostgreSQL client the app runs on: tortoise's asyncpg client, except that a transaction
that cannot begin leaves nothing behind.

tortoise's pooled transaction (``in_transaction()``) takes a pooled connection and makes the
transaction the calling task's connection before it sends ``BEGIN``, and undoes both only on
leaving the block. When ``BEGIN`` itself fails (the server shuts down or restarts at that
moment) or is cancelled, the block is never entered: the task keeps the dead transaction as its
connection, and every later query of that task fails ("connection has been released back to the
pool") however long ago the database came back. A job paused by the outage then waits forever
for a database that answers every other task (`bot.worker`). Here a failed start gives the
connection back and restores the task's connection before raising.

`storage.schema.tortoise_config` names this module as the engine of ``postgres://`` URLs (its
name holds "asyncpg": tortoise picks its migration schema editor by the client's module name).
"""

from __future__ import annotations

import contextlib

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContextPooled
from tortoise.connection import get_connections

__all__ = ["AsyncpgClient", "client_class"]


class _PooledTransaction(TransactionContextPooled):
    """tortoise's pooled transaction, undone when it fails to begin."""

    async def __aenter__(self) -> TransactionalDBClient:
        try:
            return await super().__aenter__()
        except BaseException:
            await self._undo_start()
            raise

    async def _undo_start(self) -> None:
        """Restore the task's connection and give the pooled connection back (a dead one is
        dropped by the pool, a live one rolled back), whatever part of the start happened."""
        token = getattr(self, "token", None)
        if token is not None:
            get_connections().reset(token)
            self.token = None
        connection, self.client._connection = self.client._connection, None
        pool = self.client._parent._pool
        if connection is not None and pool is not None:
            # A release that fails has terminated the connection: the pool has its slot back.
            with contextlib.suppress(Exception):
                await pool.release(connection)


class AsyncpgClient(AsyncpgDBClient):
    """tortoise's asyncpg client with `_PooledTransaction` transactions."""

    def _in_transaction(self) -> _PooledTransaction:
        return _PooledTransaction(TransactionWrapper(self), self._pool_init_lock)


client_class = AsyncpgClient
