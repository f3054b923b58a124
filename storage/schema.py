"""The database schema: which models exist, and the migrations that build them.

Contract:
- The schema is built and changed only by the migrations in the ``migrations`` package at the
  repository root (tortoise-orm's own migrations: operations rendered for the dialect when they
  run, so one folder serves SQLite and PostgreSQL). `apply_migrations` applies the pending ones
  (``invoice-backups migrate``); nothing else creates tables.
- `ensure_current_schema` raises `SchemaOutdated` (one line saying to run ``invoice-backups
  migrate``) while a migration is pending, the database is empty included.
- A database made before migrations existed (tables created by ``generate_schemas``) is adopted:
  when every table of the initial migration already exists and no migration is recorded, the
  initial migration is recorded as applied without running it.
- On PostgreSQL, concurrent `apply_migrations` calls (several processes starting) run one after
  the other (an advisory lock); the later ones find nothing to do.
- `unmigrated_model_changes` lists model changes no migration holds yet (a test keeps it empty);
  `write_migration` writes them as the next migration file.

Works on the connection `storage.db.open_database` opened (connection name ``default``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.autodetector import MigrationAutodetector
from tortoise.migrations.executor import MigrationExecutor, MigrationTarget
from tortoise.migrations.migration import Migration
from tortoise.migrations.operations import CreateModel
from tortoise.migrations.schema_editor import BaseSchemaEditor, SqliteSchemaEditor
from tortoise.migrations.writer import format_migration_name

from storage.schema_errors import SchemaConflict, SchemaOutdated

APP_LABEL = "models"
MIGRATIONS_PACKAGE = "migrations"
CONNECTION = "default"
MODEL_MODULES: list[str] = [
    "storage.models",
    "storage.jobs",
    "storage.slack_deliveries",
    "storage.links",
    "storage.audit",
    "storage.schedules",
    "storage.webhooks",
]
TORTOISE_ASYNCPG_ENGINE = "tortoise.backends.asyncpg"
ASYNCPG_ENGINE = "storage.asyncpg_client"  # tortoise's, with transactions that clean up
MIGRATE_COMMAND = "invoice-backups migrate"
# Any constant shared by every process of the app: the key of the PostgreSQL advisory lock.
PG_MIGRATION_LOCK = 0x1B_AC_0F_5C


def apps_config() -> dict[str, dict[str, Any]]:
    """The tortoise ``apps`` configuration: our models and their migrations package."""
    return {
        APP_LABEL: {
            "models": list(MODEL_MODULES),
            "migrations": MIGRATIONS_PACKAGE,
            "default_connection": CONNECTION,
        }
    }


def tortoise_config(url: str) -> dict[str, Any]:
    """The whole tortoise configuration for the database at ``url`` (PostgreSQL through
    `storage.asyncpg_client`)."""
    connection: str | dict[str, Any] = url
    expanded = expand_db_url(url)
    if expanded["engine"] == TORTOISE_ASYNCPG_ENGINE:
        connection = {**expanded, "engine": ASYNCPG_ENGINE}
    return {"connections": {CONNECTION: connection}, "apps": apps_config()}


async def pending_migrations() -> list[str]:
    """Names (``app.name``) of the migrations not applied yet, in the order they would run.

    Raises the database's error when it does not answer (never mistakes that for "empty").
    """
    connection = connections.get(CONNECTION)
    await connection.execute_query("SELECT 1")
    steps = await _executor(connection).plan()
    return [f"{step.migration.app_label}.{step.migration.name}" for step in steps]


async def ensure_current_schema() -> None:
    """Raise `SchemaOutdated` unless every migration is applied."""
    pending = await pending_migrations()
    if not pending:
        return
    if not _is_initial(pending):
        count = f"{len(pending)} migration{'' if len(pending) == 1 else 's'}"
        state = f"is {count} behind the code (next: {pending[0]})"
    elif await _tables(connections.get(CONNECTION)) & await _initial_tables():
        state = "predates migrations"
    else:
        state = "is empty"
    raise SchemaOutdated(f"the database schema {state}: run `{MIGRATE_COMMAND}`")


async def apply_migrations(upto: str | None = None) -> list[str]:
    """Apply the pending migrations, all or ``upto`` one (a name such as ``0002_…``), adopting
    a pre-migrations database first; return the names applied (``[]`` when there was nothing
    to do). Idempotent."""
    connection = connections.get(CONNECTION)
    target = [MigrationTarget(APP_LABEL, upto)] if upto else None
    async with _migration_lock(connection):
        adopted = await _adopt_unrecorded_schema(connection)
        steps = await _executor(connection).plan(target)
        if steps:
            await _executor(connection).migrate(target)
    return adopted + [f"{step.migration.app_label}.{step.migration.name}" for step in steps]


async def unmigrated_model_changes() -> list[str]:
    """What the models say that the migrations do not (``[]`` when they agree)."""
    writers = await MigrationAutodetector(Tortoise.apps, apps_config()).changes()
    return [operation.describe() for writer in writers for operation in writer.operations]


async def write_migration(name: str | None = None) -> list[Path]:
    """Write the model changes as new migration files (named ``NNNN_<name>`` when ``name`` is
    given); return their paths ([] when there is nothing to write)."""
    writers = await MigrationAutodetector(Tortoise.apps, apps_config()).changes()
    paths: list[Path] = []
    for writer in writers:
        if name:
            number = int(writer.name.split("_", 1)[0])
            writer.name = format_migration_name(number, name)
        paths.append(writer.write())
    return paths


def _is_initial(pending: list[str]) -> bool:
    return pending[0].endswith(".0001_initial")


def _executor(connection: BaseDBAsyncClient) -> MigrationExecutor:
    return _Executor(connection, apps_config())


@asynccontextmanager
async def _migration_lock(connection: BaseDBAsyncClient) -> AsyncIterator[None]:
    """Hold the PostgreSQL advisory lock (on one pooled connection) while migrating."""
    if connection.capabilities.dialect != "postgres":
        yield
        return
    async with connection.acquire_connection() as locked:
        await locked.execute("SELECT pg_advisory_lock($1)", PG_MIGRATION_LOCK)
        try:
            yield
        finally:
            await locked.execute("SELECT pg_advisory_unlock($1)", PG_MIGRATION_LOCK)


async def _adopt_unrecorded_schema(connection: BaseDBAsyncClient) -> list[str]:
    """Record the initial migration as applied on a database whose tables predate migrations."""
    executor = _executor(connection)
    await executor.loader.build_graph()
    if executor.loader.applied_migrations:
        return []
    initial = _initial_migration(executor)
    wanted = _created_tables(initial)
    existing = await _tables(connection) & wanted
    if not existing:
        return []
    if existing != wanted:
        raise SchemaConflict(
            "the database has some tables of invoice-backups but not all "
            f"(missing: {', '.join(sorted(wanted - existing))}) and no migration history; "
            "restore it or use an empty database"
        )
    target = MigrationTarget(app_label=APP_LABEL, name=initial.name)
    await executor.migrate([target], fake=True)
    return [f"{APP_LABEL}.{initial.name} (adopted: its tables already existed)"]


def _initial_migration(executor: MigrationExecutor) -> Migration:
    for migration in executor.loader.disk_migrations.values():
        if migration.initial and migration.app_label == APP_LABEL:
            return migration
    raise SchemaConflict(f"no initial migration in the {MIGRATIONS_PACKAGE} package")


def _created_tables(migration: Migration) -> set[str]:
    return {
        str(operation.options["table"])
        for operation in migration.operations
        if isinstance(operation, CreateModel) and operation.options
    }


async def _initial_tables() -> set[str]:
    executor = _executor(connections.get(CONNECTION))
    executor.loader.load_disk()
    return _created_tables(_initial_migration(executor))


async def _tables(connection: BaseDBAsyncClient) -> set[str]:
    if connection.capabilities.dialect == "postgres":
        query = "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    _, rows = await connection.execute_query(query)
    return {str(row["name"]) for row in rows}


class _Executor(MigrationExecutor):
    """tortoise's executor, with a SQLite schema editor that splits DDL safely."""

    def _schema_editor(self, atomic: bool = True, collect_sql: bool = False) -> BaseSchemaEditor:
        if self.connection.capabilities.dialect == "sqlite":
            return _SqliteSchemaEditor(self.connection, atomic=atomic, collect_sql=collect_sql)
        return super()._schema_editor(atomic=atomic, collect_sql=collect_sql)


class _SqliteSchemaEditor(SqliteSchemaEditor):
    """tortoise 1.1.9 splits SQLite DDL on every ``;``, also inside the ``/* … */`` table
    comments it makes from model docstrings; split on whole statements instead. And it rebuilds
    a table to alter or drop a column (SQLite's way) without its indexes; they are made again.
    """

    async def _remake_table(
        self,
        model: Any,
        create_field: Any = None,
        delete_field: Any = None,
        alter_fields: Any = None,
    ) -> None:
        if self.collect_sql:
            await super()._remake_table(model, create_field, delete_field, alter_fields)
            return
        table = model._meta.db_table
        _, indexes = await self.client.execute_query(
            "SELECT name, sql FROM sqlite_master "
            "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            [table],
        )
        dropped = None
        if delete_field is not None:
            dropped = delete_field.source_field or delete_field.model_field_name
        kept: list[str] = []
        for index in indexes:
            _, parts = await self.client.execute_query(f'PRAGMA index_info("{index["name"]}")')
            if dropped not in {part["name"] for part in parts}:
                kept.append(str(index["sql"]))
        await super()._remake_table(model, create_field, delete_field, alter_fields)
        for sql in kept:
            await self._run_sql(sql)

    async def _run_sql(self, sql: str) -> None:
        if self.collect_sql or not self.atomic_migration:
            await super()._run_sql(sql)
            return
        for statement in sqlite_statements(sql):
            await self.client.execute_query(statement)


def sqlite_statements(script: str) -> list[str]:
    """The complete SQL statements of ``script`` (``;`` inside comments and strings kept)."""
    statements: list[str] = []
    current = ""
    pieces = script.split(";")
    for number, piece in enumerate(pieces, start=1):
        current += piece if number == len(pieces) else piece + ";"
        if sqlite3.complete_statement(current) or number == len(pieces):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    return statements
