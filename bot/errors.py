"""Telling infrastructure failures from bugs."""

from __future__ import annotations

import sqlite3

from tortoise.exceptions import BaseORMException, IntegrityError

from storage.blobs import StoreUnavailable


def is_database_error(error: BaseException) -> bool:
    """True for errors meaning the database is unreachable or failing (not a bug of ours)."""
    if isinstance(error, IntegrityError):
        return False
    if isinstance(error, BaseORMException | sqlite3.Error | ConnectionError):
        return True
    return type(error).__module__.startswith("asyncpg")


def is_store_outage(error: BaseException) -> bool:
    """True for errors meaning the object store does not answer (retry when it does)."""
    return isinstance(error, StoreUnavailable)
