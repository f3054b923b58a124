"""The schema's errors, in a module that imports no ORM: a command catches them without loading
tortoise before it opens the database (`storage.schema` raises them)."""

from __future__ import annotations


class SchemaOutdated(Exception):
    """The database schema is behind the code; ``str(exc)`` is one line saying what to run."""


class SchemaConflict(Exception):
    """The database holds tables the migrations did not make and cannot adopt."""
