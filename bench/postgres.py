"""Scratch PostgreSQL databases for the benches: made on a server (trust auth, through its
``postgres`` database) before a run and dropped after it."""

from __future__ import annotations

import os

import asyncpg

# The server the benches use unless told otherwise: the test server.
DEFAULT_SERVER = os.environ.get("BACKUPS_TEST_PG", "postgres://postgres@127.0.0.1:5432")


async def run_statement(server: str, statement: str) -> None:
    """Run one statement on the server's ``postgres`` database."""
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def create_database(server: str, name: str) -> str:
    """Create the empty database ``name`` on ``server``; return its URL."""
    await run_statement(server, f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


async def drop_database(server: str, name: str) -> None:
    """Drop ``name`` (if it exists) from ``server``, ending its connections."""
    await run_statement(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
