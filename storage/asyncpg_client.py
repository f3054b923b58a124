"""The PostgreSQL client the app runs on: tortoise's asyncpg client, except that a transaction
that cannot begin, or whose connection fails while it is given back, leaves nothing behind.

tortoise's pooled transaction (``in_transaction()``) takes a pooled connection and makes the
transaction the calling task's connection before it sends ``BEGIN``, and undoes both only on
leaving the block. When ``BEGIN`` itself fails (the server shuts down or restarts at that
moment) or is cancelled, the block is never entered: the task keeps the dead transaction as its
connection, and every later query of that task fails ("connection has been released back to the
pool") however long ago the database came back. A job paused by the outage then waits forever
for a database that answers every other task (`bot.worker`). Here a failed start gives the
connection back and restores the task's connection before raising.

Leaving the block has the same hole: tortoise gives the connection back to the pool and only
then restores the task's connection. When the give-back fails (its reset meets the server going
away: asyncpg terminates the connection, frees its pool slot and raises), the task stays bound
to the dead transaction. Here the task's connection is restored whatever the give-back does.

`storage.schema.tortoise_config` names this module as the engine of ``postgres://`` URLs (its
name holds "asyncpg": tortoise picks its migration schema editor by the client's module name).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import TransactionalDBClient, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

log = logging.getLogger(__name__)

__all__ = ["AsyncpgClient", "client_class"]


class _PooledTransaction(TransactionContextPooled):
    """tortoise's pooled transaction; the task comes out of it clean however it fails."""

    async def __aenter__(self) -> TransactionalDBClient:
        try:
            return await super().__aenter__()
        except BaseException:
            await self._undo_start()
            raise

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        """tortoise's end of the transaction (commit, or roll back on an exception), except that
        the task's connection is restored even when giving the pooled connection back fails."""
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            try:
                pool = self.client._parent._pool
                if pool is not None:
                    await pool.release(self.client._connection)
            except Exception as error:  # asyncpg has terminated it: the pool has the slot back
                log.debug("a pooled connection failed while given back: %r", error)
            finally:
                token, self.token = self.token, None
                if token is not None:
                    get_connections().reset(token)

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
