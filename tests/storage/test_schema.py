"""Migrations (storage/schema.py, migrations/) on SQLite and PostgreSQL: they hold every model
change, build what the models describe, run once, adopt a pre-migration database, and a
database that is behind is refused."""

from __future__ import annotations

import ast
import asyncio
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise, connections

from storage.db import close_database, open_database
from storage.schema import (
    SchemaOutdated,
    apply_migrations,
    ensure_current_schema,
    pending_migrations,
    sqlite_statements,
    unmigrated_model_changes,
)
from tests.conftest import PG_SERVER, create_postgres_database, drop_postgres_database

Schema = dict[str, Any]


async def test_the_migrations_hold_every_model_change(database: str) -> None:
    """Fails when a model changed without a migration: run `invoice-backups makemigrations`."""
    assert await unmigrated_model_changes() == []
    assert await pending_migrations() == []


async def test_the_migrations_build_what_the_models_describe(
    database_url: str, data_dir: Path
) -> None:
    await open_database(database_url, migrate=True)
    try:
        migrated = await _introspect()
    finally:
        await close_database()
    async with _scratch_database(database_url, data_dir) as scratch:
        await open_database(scratch, check_schema=False)
        try:
            await Tortoise.generate_schemas()
            generated = await _introspect()
        finally:
            await close_database()
    # The search index (migration 0004) is no model: raw SQL, each database's own text index.
    assert set(migrated["tables"]) - set(generated["tables"]) >= {"invoice_search"}
    apart = ("tortoise_migrations", "invoice_search")
    assert _without_tables(migrated, apart) == generated


def _without_tables(schema: Schema, prefixes: tuple[str, ...]) -> Schema:
    """``schema`` without the tables whose names begin with one of ``prefixes``."""

    def kept(table: str) -> bool:
        return not table.startswith(prefixes)

    return {
        "tables": {name: columns for name, columns in schema["tables"].items() if kept(name)},
        "indexes": {index for index in schema["indexes"] if kept(index[0])},
        "foreign_keys": {key for key in schema["foreign_keys"] if kept(key[0])},
    }


async def test_migrate_is_idempotent_and_an_outdated_schema_is_refused(database_url: str) -> None:
    with pytest.raises(SchemaOutdated) as refused:
        await open_database(database_url)
    assert str(refused.value) == ("the database schema is empty: run `invoice-backups migrate`")
    everything = await open_database(database_url, migrate=True)
    assert everything[0] == "models.0001_initial" and everything == sorted(everything)
    await close_database()
    assert await open_database(database_url, migrate=True) == []
    await ensure_current_schema()
    await close_database()


@pytest.mark.postgres
async def test_concurrent_migrations_on_postgres_run_one_after_the_other(data_dir: Path) -> None:
    name = await create_postgres_database()
    try:
        await open_database(f"{PG_SERVER}/{name}", check_schema=False)
        first, second = await asyncio.gather(apply_migrations(), apply_migrations())
        assert sorted([first, second], key=len)[0] == [] and "models.0001_initial" in first + second
        assert await pending_migrations() == []
    finally:
        await close_database()
        await drop_postgres_database(name)


async def test_a_database_made_before_migrations_is_adopted(database_url: str) -> None:
    await open_database(database_url, check_schema=False)
    await apply_migrations(upto="0001_initial")  # the schema before migrations existed …
    await connections.get("default").execute_script('DROP TABLE "tortoise_migrations"')
    await close_database()  # … with no migration history
    with pytest.raises(SchemaOutdated, match="predates migrations: run `invoice-backups migrate`"):
        await open_database(database_url)
    applied = await open_database(database_url, migrate=True)
    try:
        assert applied[0] == "models.0001_initial (adopted: its tables already existed)"
        assert "models.0001_initial" not in applied[1:]
        assert await pending_migrations() == []
    finally:
        await close_database()


def test_sqlite_statements_split_on_whole_statements_only() -> None:
    script = 'CREATE TABLE "a" ("x" INT) /* one; two */;\nCREATE INDEX "i" ON "a" ("x");'
    assert sqlite_statements(script) == [
        'CREATE TABLE "a" ("x" INT) /* one; two */;',
        'CREATE INDEX "i" ON "a" ("x");',
    ]
    assert sqlite_statements("SELECT ';'") == ["SELECT ';'"]


class _scratch_database:
    """A second empty database of the same kind as ``url``."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir
        self.name: str | None = None

    async def __aenter__(self) -> str:
        if self.url.startswith("sqlite"):
            return f"sqlite://{self.data_dir / 'scratch.sqlite3'}"
        self.name = await create_postgres_database()
        return f"{PG_SERVER}/{self.name}"

    async def __aexit__(self, *exc_info: object) -> None:
        if self.name is not None:
            await drop_postgres_database(self.name)


async def _introspect() -> Schema:
    """Tables → columns (type, nullable, primary key) and indexes → columns (unique or not)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        return await _introspect_sqlite(connection)
    return await _introspect_postgres(connection)


async def _introspect_sqlite(connection: Any) -> Schema:
    _, tables = await connection.execute_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    schema: Schema = {"tables": {}, "indexes": set(), "foreign_keys": set()}
    for row in tables:
        table = row["name"]
        _, columns = await connection.execute_query(f'PRAGMA table_info("{table}")')
        schema["tables"][table] = {
            c["name"]: (c["type"], bool(c["notnull"]), bool(c["pk"])) for c in columns
        }
        _, indexes = await connection.execute_query(f'PRAGMA index_list("{table}")')
        for index in indexes:
            _, parts = await connection.execute_query(f'PRAGMA index_info("{index["name"]}")')
            names = tuple(part["name"] for part in sorted(parts, key=lambda p: p["seqno"]))
            schema["indexes"].add((table, names, bool(index["unique"])))
        _, keys = await connection.execute_query(f'PRAGMA foreign_key_list("{table}")')
        for key in keys:
            schema["foreign_keys"].add(
                (table, key["from"], key["table"], key["to"], key["on_delete"])
            )
    return schema


async def _introspect_postgres(connection: Any) -> Schema:
    _, columns = await connection.execute_query(
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = current_schema()"
    )
    schema: Schema = {"tables": {}, "indexes": set(), "foreign_keys": set()}
    for c in columns:
        serial = str(c["column_default"] or "").startswith("nextval(")
        schema["tables"].setdefault(c["table_name"], {})[c["column_name"]] = (
            c["data_type"],
            c["is_nullable"] == "NO",
            serial,
        )
    _, indexes = await connection.execute_query(
        "SELECT t.relname AS table_name, ix.indisunique AS is_unique, "
        "array_agg(a.attname ORDER BY k.n) AS names "
        "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid "
        "CROSS JOIN LATERAL unnest(ix.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
        "WHERE t.relnamespace = current_schema()::regnamespace "
        "GROUP BY t.relname, ix.indexrelid, ix.indisunique"
    )
    for index in indexes:
        schema["indexes"].add((index["table_name"], tuple(index["names"]), index["is_unique"]))
    _, keys = await connection.execute_query(
        "SELECT c.conrelid::regclass::text AS table_name, c.confrelid::regclass::text AS target, "
        "c.confdeltype AS on_delete, pg_get_constraintdef(c.oid) AS definition "
        "FROM pg_constraint c WHERE c.contype = 'f' "
        "AND c.connamespace = current_schema()::regnamespace"
    )
    for key in keys:
        schema["foreign_keys"].add(
            (key["table_name"], key["target"], key["on_delete"], key["definition"])
        )
    return schema


async def test_later_migrations_keep_the_rows_of_a_populated_database(database_url: str) -> None:
    """Rows written under the initial schema survive the later migrations (SQLite rebuilds a
    table to alter a column) and get the new columns' defaults."""
    await open_database(database_url, check_schema=False)
    try:
        await apply_migrations(upto="0001_initial")
        connection = connections.get("default")
        await connection.execute_script(
            "INSERT INTO projects (id, name, project_number, company_id, company_name, "
            "invoice_contacts_may_compile, dictionary, updated_at) VALUES "
            "(1, 'P', 'P-1', 2, 'C', false, '{}', '2026-01-01 00:00:00');"
            "INSERT INTO commitments (id, project_id, number, title, status, executed, private, "
            "vendor_name, invoice_contacts, private_list) VALUES "
            "(3, 1, 'SC-1', '', '', false, true, '', '[]', '[]');"
            "INSERT INTO invoices (id, project_id, commitment_id, number, period_id, status, "
            "summary, summary_text, items, current_payment_due, updated_at) VALUES "
            "(4, 1, 3, 1, 5, 'approved', '{}', '{}', '[]', 10.00, '2026-01-01 00:00:00');"
            "INSERT INTO attachments (id, invoice_id, position, filename, content_type, sha256, "
            "byte_size) VALUES (6, 4, 0, 'a.pdf', 'application/pdf', 'ab', 7);"
        )
        await apply_migrations()
        assert await pending_migrations() == []
        _, rows = await connection.execute_query(
            "SELECT p.source, p.synced_at, c.private_list_known, a.sha256, a.byte_size "
            "FROM projects p JOIN commitments c ON c.project_id = p.id "
            "JOIN invoices i ON i.commitment_id = c.id JOIN attachments a ON a.invoice_id = i.id"
        )
        assert [dict(row) for row in rows] == [
            {
                "source": "bundle",
                "synced_at": None,
                "private_list_known": True,
                "sha256": "ab",
                "byte_size": 7,
            }
        ]
    finally:
        await close_database()


def test_migrations_are_frozen_and_import_nothing_of_the_project() -> None:
    """A migration spells out what it creates: importing a live constant (from ``storage/`` or
    elsewhere in the project) would let a later change silently rewrite history (issue 9)."""
    project_packages = {"storage", "commands", "sources", "bot", "pdf", "procore"}
    migrations = sorted((Path(__file__).resolve().parents[2] / "migrations").glob("0*.py"))
    assert migrations
    for migration in migrations:
        tree = ast.parse(migration.read_text(), filename=str(migration))
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        assert not imported & project_packages, (migration.name, imported & project_packages)
