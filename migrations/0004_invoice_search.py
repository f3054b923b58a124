"""The invoice search index (`storage.search_index`), outside the models, then filled.

PostgreSQL: the ``pg_trgm`` extension and ``invoice_search`` with a trigram GIN index on its
text. SQLite: ``invoice_search`` (its ``menu_order`` is the rowid) and the FTS5 table
``invoice_search_fts`` (trigram tokenizer, external content) kept in step by triggers.
Written by hand (tortoise's autodetector knows nothing of these tables); the names below are
literals on purpose, and the index's text is made by the frozen copies below (no live code).
"""

import re
import unicodedata
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

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


# --- the index's contents as of this migration (frozen: later code may index differently) ----

_NUMBER_PUNCTUATION = re.compile(r"(?<=\d)[,.\-/'’–—:_](?=\d)")
_SPACES = re.compile(r"\s+")
_WORD_STARTS = re.compile(r"(?<![^\W_])(?=[^\W_])")
_WORD_START = "\x1f"
_STATUS_LABELS = {
    "draft": "Draft",
    "under_review": "Under Review",
    "revise_and_resubmit": "Revise & Resubmit",
    "pending_owner_approval": "Pending Owner Approval",
    "approved_as_noted": "Approved as Noted",
    "approved": "Approved",
}
_INVOICES = (
    "SELECT i.id, i.commitment_id, i.number, i.invoice_number, i.period_id, i.requisition_end, "
    "i.status, i.current_payment_due, c.number AS contract_number, c.title AS contract_title, "
    "c.vendor_name FROM invoices AS i JOIN commitments AS c ON c.id = i.commitment_id "
    "WHERE i.project_id = {mark}"
)
_PERIODS = (
    "SELECT id, position, start_date, end_date FROM billing_periods WHERE project_id = {mark}"
)
_INSERT = (
    "INSERT INTO invoice_search (invoice_id, project_id, commitment_id, menu_order, invoice_key, "
    "contract_key, search_text) VALUES ({marks})"
)


def _normalized(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(char for char in decomposed if not unicodedata.combining(char)).casefold()
    return _SPACES.sub(" ", _NUMBER_PUNCTUATION.sub("", folded)).strip()


def _marked(*fields: str) -> str:
    return _WORD_STARTS.sub(_WORD_START, _normalized(" ".join(field for field in fields if field)))


def _natural(text: str) -> tuple:
    parts = re.split(r"(\d+)", text.casefold())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


def _date(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _money(value) -> str:
    rounded = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"{'-' if rounded < 0 else ''}${abs(rounded):,.2f}"


def _search_text(row, period) -> str:
    if period is not None:
        position, start, end = period
        period_part = _marked(
            f"Billing period {position}", start.isoformat(), end.isoformat(), f"{start:%B %Y}"
        )
    else:
        month = _date(row["requisition_end"])
        period_part = _marked("Missing billing period", f"{month:%B %Y}" if month else "")
    status = str(row["status"])
    own = [
        f"#{row['number']}",
        row["invoice_number"] or "",
        _STATUS_LABELS.get(status, status.replace("_", " ").title()),
        _money(row["current_payment_due"]),
    ]
    contract = _marked(
        str(row["contract_number"] or ""),
        str(row["contract_title"] or ""),
        str(row["vendor_name"] or ""),
    )
    own_part = _WORD_STARTS.sub(_WORD_START, _normalized(" ".join(own)))
    return " ".join(part for part in (contract, own_part, period_part) if part)


async def _index_project(client, postgres: bool, project_id: int, first: int) -> int:
    """Index one project's invoices, menu order from ``first``; returns the next free one."""
    mark = "$1" if postgres else "?"
    _, period_rows = await client.execute_query(_PERIODS.format(mark=mark), [project_id])
    periods = {
        int(row["id"]): (int(row["position"]), _date(row["start_date"]), _date(row["end_date"]))
        for row in period_rows
    }
    _, rows = await client.execute_query(_INVOICES.format(mark=mark), [project_id])

    def menu_order(row) -> tuple:
        period = periods.get(int(row["period_id"]))
        return (
            period is None,
            -(period[0] if period else 0),
            _natural(str(row["contract_number"] or "")),
            -int(row["number"]),
            -int(row["id"]),
        )

    values = [
        [
            int(row["id"]),
            project_id,
            int(row["commitment_id"]),
            first + position,
            _normalized(row["invoice_number"] or ""),
            _normalized(str(row["contract_number"] or "")),
            _search_text(row, periods.get(int(row["period_id"]))),
        ]
        for position, row in enumerate(sorted(rows, key=menu_order))
    ]
    marks = ", ".join(f"${n}" if postgres else "?" for n in range(1, 8))
    for start in range(0, len(values), 1000):
        await client.execute_many(_INSERT.format(marks=marks), values[start : start + 1000])
    return first + len(values)


async def create_search_index(apps, schema_editor) -> None:
    """Create the dialect's tables, then index every project's invoices (menu order numbers
    unique across projects, as SQLite's FTS5 rowid needs)."""
    client = schema_editor.client
    postgres = client.capabilities.dialect == "postgres"
    for statement in POSTGRES if postgres else SQLITE:
        await client.execute_query(statement)
    _, rows = await client.execute_query("SELECT id FROM projects ORDER BY id")
    first = 1
    for row in rows:
        first = await _index_project(client, postgres, int(row["id"]), first)


async def drop_search_index(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in DROP[client.capabilities.dialect]:
        await client.execute_query(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_tie_out_setting")]

    operations = [
        ops.RunPython(create_search_index, drop_search_index),
    ]
