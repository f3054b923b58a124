"""The invoice search index (`storage.search_index`), outside the models, then filled.

PostgreSQL: the ``pg_trgm`` extension and ``invoice_search`` with a trigram GIN index on its
text. SQLite: ``invoice_search`` (its ``menu_order`` is the rowid) and the FTS5 table
``invoice_search_fts`` (trigram tokenizer, external content) kept in step by triggers.
Written by hand (tortoise's autodetector knows nothing of these tables); the names below are
literals on purpose.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE TABLE invoice_search (
        invoice_id BIGINT PRIMARY KEY REFERENCES invoices (id) ON DELETE CASCADE,
        project_id BIGINT NOT NULL,
        commitment_id BIGINT NOT NULL,
        menu_order BIGINT NOT NULL,
        invoice_key TEXT COLLATE "C" NOT NULL,
        contract_key TEXT COLLATE "C" NOT NULL,
        search_text TEXT NOT NULL
    )""",
    "CREATE INDEX invoice_search_menu ON invoice_search (project_id, menu_order)",
    "CREATE INDEX invoice_search_invoice_key ON invoice_search (project_id, invoice_key)",
    "CREATE INDEX invoice_search_contract_key ON invoice_search (project_id, contract_key)",
    "CREATE INDEX invoice_search_trigram ON invoice_search USING gin (search_text gin_trgm_ops)",
]

SQLITE = [
    """CREATE TABLE invoice_search (
        menu_order INTEGER PRIMARY KEY,
        invoice_id BIGINT NOT NULL UNIQUE REFERENCES invoices (id) ON DELETE CASCADE,
        project_id BIGINT NOT NULL,
        commitment_id BIGINT NOT NULL,
        invoice_key TEXT NOT NULL,
        contract_key TEXT NOT NULL,
        search_text TEXT NOT NULL
    )""",
    "CREATE INDEX invoice_search_menu ON invoice_search (project_id, menu_order)",
    "CREATE INDEX invoice_search_invoice_key ON invoice_search (project_id, invoice_key)",
    "CREATE INDEX invoice_search_contract_key ON invoice_search (project_id, contract_key)",
    """CREATE VIRTUAL TABLE invoice_search_fts USING fts5(
        search_text, content='invoice_search', content_rowid='menu_order', tokenize='trigram'
    )""",
    """CREATE TRIGGER invoice_search_inserted AFTER INSERT ON invoice_search BEGIN
        INSERT INTO invoice_search_fts (rowid, search_text)
        VALUES (new.menu_order, new.search_text);
    END""",
    """CREATE TRIGGER invoice_search_deleted AFTER DELETE ON invoice_search BEGIN
        INSERT INTO invoice_search_fts (invoice_search_fts, rowid, search_text)
        VALUES ('delete', old.menu_order, old.search_text);
    END""",
    """CREATE TRIGGER invoice_search_updated AFTER UPDATE ON invoice_search BEGIN
        INSERT INTO invoice_search_fts (invoice_search_fts, rowid, search_text)
        VALUES ('delete', old.menu_order, old.search_text);
        INSERT INTO invoice_search_fts (rowid, search_text)
        VALUES (new.menu_order, new.search_text);
    END""",
]

DROP = {
    "postgres": ["DROP TABLE IF EXISTS invoice_search"],
    "sqlite": ["DROP TABLE IF EXISTS invoice_search_fts", "DROP TABLE IF EXISTS invoice_search"],
}


async def create_search_index(apps, schema_editor) -> None:
    """Create the dialect's tables, then index every project's invoices."""
    from commands.invoice_search import refresh_invoice_search

    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    for statement in POSTGRES if postgres else SQLITE:
        await client.execute_query(statement)
    _, rows = await client.execute_query("SELECT id FROM projects ORDER BY id")
    for row in rows:
        await refresh_invoice_search(int(row["id"]), client)


async def drop_search_index(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in DROP[client.capabilities.dialect]:
        await client.execute_query(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_tie_out_setting")]

    operations = [
        ops.RunPython(create_search_index, drop_search_index),
    ]
