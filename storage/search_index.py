"""The invoice search index: one row per invoice in ``invoice_search``, kept by
`commands.invoice_search`, queried here with each database's own text index.

The tables are made by the migration ``0004_invoice_search`` (not by the models):
- PostgreSQL: ``invoice_search`` with a ``pg_trgm`` GIN index on ``search_text``.
- SQLite: ``invoice_search`` plus the FTS5 table ``invoice_search_fts`` (trigram tokenizer,
  external content, kept in step by triggers) whose rowid is ``menu_order``.

Contract:
- A row holds the invoice's normalised search text, its normalised invoice number and contract
  number (the ranking keys) and ``menu_order``: within a project, ascending ``menu_order`` is the
  order of the unfiltered menu. Rows are written per project (`replace_project_entries`) and
  deleted with their invoice (foreign key, cascade).
- `ranked_matches` returns the invoices matching every word, ranked: a word equal to the invoice
  number or contract number first, then a word that begins one of them, then the rest; menu
  order within each rank.
- Words are already normalised (`commands.text_search.query_words`); matching is substring
  matching on ``search_text``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from storage.db import refresh_planner_statistics

SEARCH_TABLE = "invoice_search"
SEARCH_FTS_TABLE = "invoice_search_fts"  # SQLite only
# Beyond every character: `key >= word AND key < word + PREFIX_END` is "key starts with word".
PREFIX_END = "\U0010ffff"
# FTS5's trigram tokenizer cannot look up words shorter than this; they are checked with LIKE.
TRIGRAM = 3
# Up to this many invoices whose number or contract number begins with a typed word are ranked
# from their own indexes; more than that, the menu-order walk finds the first ones sooner.
PREFIX_INDEX_LIMIT = 2000
WRITE_CHUNK = 1000
# A full write spaces the project's ``menu_order`` values this far apart, so an invoice that is
# new or moved later gets a value between its neighbours' (`place_entries`) without renumbering.
MENU_ORDER_GAP = 1024


@dataclass(frozen=True)
class SearchEntry:
    """What the index holds for one invoice (all text already normalised)."""

    invoice_id: int
    commitment_id: int
    invoice_key: str
    contract_key: str
    search_text: str


def search_connection() -> BaseDBAsyncClient:
    """The connection the index lives on (the app's default connection)."""
    return connections.get("default")


async def replace_project_entries(
    connection: BaseDBAsyncClient, project_id: int, entries_in_menu_order: Sequence[SearchEntry]
) -> None:
    """Make ``entries_in_menu_order`` the project's whole index (its menu order is theirs,
    `MENU_ORDER_GAP` apart); when the project's invoices and their order are unchanged, only
    changed entries are written.

    Runs on ``connection``, which should be inside a transaction so readers never see the
    project half-written."""
    postgres = _is_postgres(connection)
    if postgres:
        # Two refreshes of one project run one after the other.
        await connection.execute_query(
            "SELECT id FROM projects WHERE id = $1 FOR UPDATE", [project_id]
        )
    mark = "$1" if postgres else "?"
    _, rows = await connection.execute_query(
        "SELECT invoice_id, commitment_id, invoice_key, contract_key, search_text "
        f"FROM {SEARCH_TABLE} WHERE project_id = {mark} ORDER BY menu_order",
        [project_id],
    )
    current = [_entry_of(row) for row in rows]
    if [entry.invoice_id for entry in current] == [
        entry.invoice_id for entry in entries_in_menu_order
    ]:
        # Same invoices in the same order: rewrite only the entries that changed.
        await _rewrite(
            connection,
            [
                entry
                for entry, old in zip(entries_in_menu_order, current, strict=True)
                if entry != old
            ],
        )
        return
    await connection.execute_query(
        f"DELETE FROM {SEARCH_TABLE} WHERE project_id = {mark}", [project_id]
    )
    first = 1
    if not postgres:
        # The FTS5 rowid is menu_order: unique across projects (the delete above holds the
        # database's write lock, so no other writer allocates the same numbers).
        _, rows = await connection.execute_query(
            f"SELECT COALESCE(MAX(menu_order), 0) AS top FROM {SEARCH_TABLE}"
        )
        first = int(rows[0]["top"]) + 1
    await _insert(
        connection,
        project_id,
        [
            (first + position * MENU_ORDER_GAP, entry)
            for position, entry in enumerate(entries_in_menu_order)
        ],
    )
    # The project's invoices were (re)loaded. PostgreSQL: fresh statistics of the index, so
    # the planner knows when walking the menu order beats the trigram index (without them it
    # estimates every LIKE as rare).
    await refresh_planner_statistics(connection, SEARCH_TABLE)


async def update_entries(
    connection: BaseDBAsyncClient, project_id: int, entries: Sequence[SearchEntry]
) -> bool:
    """Rewrite these entries where they differ from the index, keeping their place in the menu
    order; False (nothing written) when one of them has no entry in the project yet."""
    if not entries:
        return True
    current: dict[int, SearchEntry] = {}
    ids = sorted(entry.invoice_id for entry in entries)
    for start in range(0, len(ids), WRITE_CHUNK):
        query = _Query(connection)
        _, rows = await connection.execute_query(
            "SELECT invoice_id, commitment_id, invoice_key, contract_key, search_text "
            f"FROM {SEARCH_TABLE} WHERE project_id = {query.param(project_id)} "
            f"AND invoice_id {query.among(ids[start : start + WRITE_CHUNK])}",
            query.values,
        )
        for row in rows:
            current[int(row["invoice_id"])] = _entry_of(row)
    if any(entry.invoice_id not in current for entry in entries):
        return False
    await _rewrite(connection, [entry for entry in entries if entry != current[entry.invoice_id]])
    return True


async def project_menu_orders(connection: BaseDBAsyncClient, project_id: int) -> dict[int, int]:
    """The project's indexed invoices: invoice id → ``menu_order``."""
    query = _Query(connection)
    _, rows = await connection.execute_query(
        f"SELECT invoice_id, menu_order FROM {SEARCH_TABLE} "
        f"WHERE project_id = {query.param(project_id)}",
        query.values,
    )
    return {int(row["invoice_id"]): int(row["menu_order"]) for row in rows}


async def place_entries(
    connection: BaseDBAsyncClient,
    project_id: int,
    ids_in_menu_order: Sequence[int],
    current: dict[int, int],
    placed: Sequence[SearchEntry],
) -> bool:
    """Write the ``placed`` entries (new, or moved in the menu's order) at their place in
    ``ids_in_menu_order`` (the project's whole order; ``current``: its `project_menu_orders`),
    each between its neighbours that keep theirs; nothing else is written. False (nothing
    written) when that cannot be done: the kept entries are not in that order any more, or
    there is no free ``menu_order`` between two neighbours (then rewrite the project)."""
    if len(placed) > WRITE_CHUNK:
        return False  # that many: rewriting the project is as cheap
    moving = {entry.invoice_id for entry in placed}
    kept = [invoice_id for invoice_id in ids_in_menu_order if invoice_id not in moving]
    if any(invoice_id not in current for invoice_id in kept):
        return False
    kept_orders = [current[invoice_id] for invoice_id in kept]
    if any(a >= b for a, b in zip(kept_orders, kept_orders[1:], strict=False)):
        return False
    if not placed:
        return True
    values: dict[int, int] = {}
    run: list[int] = []
    before: int | None = None
    for invoice_id in [*ids_in_menu_order, None]:
        if invoice_id is not None and invoice_id in moving:
            run.append(invoice_id)
            continue
        after = current[invoice_id] if invoice_id is not None else None
        if run:
            if before is None and after is None:
                return False  # nothing kept to place them by
            low = before if before is not None else after - MENU_ORDER_GAP * (len(run) + 1)
            high = after if after is not None else before + MENU_ORDER_GAP * (len(run) + 1)
            step = (high - low) // (len(run) + 1)
            if step < 1:
                return False
            values.update({moved: low + step * (n + 1) for n, moved in enumerate(run)})
            run = []
        before = after
    query = _Query(connection)
    _, taken = await connection.execute_query(
        f"SELECT menu_order FROM {SEARCH_TABLE} WHERE menu_order "
        f"{query.among(sorted(values.values()))} AND NOT (project_id = "
        f"{query.param(project_id)} AND invoice_id {query.among(sorted(moving))})",
        query.values,
    )
    if taken:  # another project's entry (SQLite: ``menu_order`` is unique across projects)
        return False
    query = _Query(connection)
    await connection.execute_query(
        f"DELETE FROM {SEARCH_TABLE} WHERE invoice_id {query.among(moving)}", query.values
    )
    await _insert(connection, project_id, [(values[entry.invoice_id], entry) for entry in placed])
    return True


async def _insert(
    connection: BaseDBAsyncClient, project_id: int, placed: Sequence[tuple[int, SearchEntry]]
) -> None:
    """Insert entries of the project at their ``menu_order``."""
    columns = "invoice_id, project_id, commitment_id, menu_order, invoice_key, contract_key, "
    marks = ", ".join(f"${n}" if _is_postgres(connection) else "?" for n in range(1, 8))
    statement = f"INSERT INTO {SEARCH_TABLE} ({columns}search_text) VALUES ({marks})"
    values = [
        [
            entry.invoice_id,
            project_id,
            entry.commitment_id,
            menu_order,
            entry.invoice_key,
            entry.contract_key,
            entry.search_text,
        ]
        for menu_order, entry in placed
    ]
    for start in range(0, len(values), WRITE_CHUNK):
        await connection.execute_many(statement, values[start : start + WRITE_CHUNK])


def _entry_of(row: Any) -> SearchEntry:
    return SearchEntry(
        int(row["invoice_id"]),
        int(row["commitment_id"]),
        str(row["invoice_key"]),
        str(row["contract_key"]),
        str(row["search_text"]),
    )


async def _rewrite(connection: BaseDBAsyncClient, changed: Sequence[SearchEntry]) -> None:
    """Write these entries' values over their rows (same invoice, same menu order)."""
    marks = [f"${n}" if _is_postgres(connection) else "?" for n in range(1, 6)]
    statement = (
        f"UPDATE {SEARCH_TABLE} SET commitment_id = {marks[0]}, invoice_key = {marks[1]}, "
        f"contract_key = {marks[2]}, search_text = {marks[3]} WHERE invoice_id = {marks[4]}"
    )
    values = [
        [entry.commitment_id, entry.invoice_key, entry.contract_key, entry.search_text]
        + [entry.invoice_id]
        for entry in changed
    ]
    for start in range(0, len(values), WRITE_CHUNK):
        await connection.execute_many(statement, values[start : start + WRITE_CHUNK])


@dataclass(frozen=True)
class IndexedInvoice:
    """The facts of one invoice the search text is made of (read by `project_invoice_facts`)."""

    invoice_id: int
    commitment_id: int
    application_number: int
    invoice_number: str | None
    period_id: int
    requisition_end: date | None
    status: str
    current_payment_due: Decimal
    contract_number: str
    contract_title: str
    vendor_name: str


@dataclass(frozen=True)
class IndexedPeriod:
    """A billing period as the search text names it."""

    position: int
    start_date: date
    end_date: date


async def project_invoice_facts(
    connection: BaseDBAsyncClient, project_id: int, invoice_ids: Collection[int] | None = None
) -> tuple[list[IndexedInvoice], dict[int, IndexedPeriod]]:
    """The project's invoices (only ``invoice_ids`` when given) with their contract, and its
    billing periods by id, read on ``connection``."""
    invoice_rows: list[Any] = []
    chunks = (
        [None]
        if invoice_ids is None
        else [
            sorted(invoice_ids)[n : n + WRITE_CHUNK]
            for n in range(0, len(invoice_ids), WRITE_CHUNK)
        ]
    )
    for chunk in chunks:
        query = _Query(connection)
        sql = (
            "SELECT i.id, i.commitment_id, i.number, i.invoice_number, i.period_id, "
            "i.requisition_end, i.status, i.current_payment_due, c.number AS contract_number, "
            "c.title AS contract_title, c.vendor_name FROM invoices AS i "
            "JOIN commitments AS c ON c.id = i.commitment_id "
            f"WHERE i.project_id = {query.param(project_id)}"
        )
        if chunk is not None:
            sql += f" AND i.id {query.among(chunk)}"
        _, rows = await connection.execute_query(sql, query.values)
        invoice_rows.extend(rows)
    invoices = [
        IndexedInvoice(
            invoice_id=int(row["id"]),
            commitment_id=int(row["commitment_id"]),
            application_number=int(row["number"]),
            invoice_number=row["invoice_number"],
            period_id=int(row["period_id"]),
            requisition_end=_date(row["requisition_end"]),
            status=str(row["status"]),
            current_payment_due=Decimal(str(row["current_payment_due"])),
            contract_number=str(row["contract_number"] or ""),
            contract_title=str(row["contract_title"] or ""),
            vendor_name=str(row["vendor_name"] or ""),
        )
        for row in invoice_rows
    ]
    query = _Query(connection)
    _, period_rows = await connection.execute_query(
        "SELECT id, position, start_date, end_date FROM billing_periods "
        f"WHERE project_id = {query.param(project_id)}",
        query.values,
    )
    periods = {
        int(row["id"]): IndexedPeriod(
            int(row["position"]), _required_date(row["start_date"]), _required_date(row["end_date"])
        )
        for row in period_rows
    }
    return invoices, periods


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _required_date(value: Any) -> date:
    parsed = _date(value)
    if parsed is None:
        raise ValueError("a billing period without its dates")
    return parsed


@dataclass(frozen=True)
class OptionFacts:
    """What an invoice's menu option shows (read by `option_facts`); ``period`` is None when
    its billing period is missing."""

    invoice_id: int
    application_number: int
    invoice_number: str | None
    period_id: int
    period: IndexedPeriod | None
    requisition_end: date | None
    status: str
    current_payment_due: Decimal
    contract_number: str
    vendor_name: str


async def option_facts(invoice_ids: Collection[int]) -> dict[int, OptionFacts]:
    """The option facts of these invoices (those that exist), by id: one statement."""
    if not invoice_ids:
        return {}
    query = _Query(search_connection())
    sql = (
        "SELECT i.id, i.number, i.invoice_number, i.period_id, i.requisition_end, i.status, "
        "i.current_payment_due, c.number AS contract_number, c.vendor_name, "
        "p.position, p.start_date, p.end_date FROM invoices AS i "
        "JOIN commitments AS c ON c.id = i.commitment_id "
        "LEFT JOIN billing_periods AS p ON p.id = i.period_id "
        f"WHERE i.id {query.among(invoice_ids)}"
    )
    _, rows = await query.connection.execute_query(sql, query.values)
    return {
        int(row["id"]): OptionFacts(
            invoice_id=int(row["id"]),
            application_number=int(row["number"]),
            invoice_number=row["invoice_number"],
            period_id=int(row["period_id"]),
            period=(
                IndexedPeriod(
                    int(row["position"]),
                    _required_date(row["start_date"]),
                    _required_date(row["end_date"]),
                )
                if row["position"] is not None
                else None
            ),
            requisition_end=_date(row["requisition_end"]),
            status=str(row["status"]),
            current_payment_due=Decimal(str(row["current_payment_due"])),
            contract_number=str(row["contract_number"] or ""),
            vendor_name=str(row["vendor_name"] or ""),
        )
        for row in rows
    }


async def invoices_per_period(
    project_id: int, period_ids: Collection[int], commitment_ids: Collection[int]
) -> dict[int, int]:
    """How many invoices of the project each of these periods holds among these commitments
    (periods with none are left out): one statement."""
    if not period_ids or not commitment_ids:
        return {}
    query = _Query(search_connection())
    # The unary plus keeps SQLite off its (project, commitment) index, which would read every
    # invoice of the project (260 ms at 100,000) instead of the periods' own (6 ms).
    sql = (
        "SELECT period_id, COUNT(*) AS invoice_count FROM invoices "
        f"WHERE project_id = {query.param(project_id)} AND period_id {query.among(period_ids)} "
        f"AND +commitment_id {query.among(commitment_ids)} GROUP BY period_id"
    )
    _, rows = await query.connection.execute_query(sql, query.values)
    return {int(row["period_id"]): int(row["invoice_count"]) for row in rows}


async def project_entry_count(project_id: int) -> int:
    """How many invoices of the project the index holds."""
    connection = search_connection()
    query = _Query(connection)
    _, rows = await connection.execute_query(
        f"SELECT COUNT(*) AS n FROM {SEARCH_TABLE} WHERE project_id = {query.param(project_id)}",
        query.values,
    )
    return int(rows[0]["n"])


@dataclass(frozen=True)
class SearchTerms:
    """A typed query's words: `keys` as they compare with the invoice and contract numbers,
    `patterns` as they are looked for in ``search_text`` (same order, same length)."""

    keys: tuple[str, ...]
    patterns: tuple[str, ...]


async def menu_invoice_ids(
    project_id: int, commitment_ids: Collection[int], limit: int
) -> list[int]:
    """The first ``limit`` invoices of the unfiltered menu among ``commitment_ids``."""
    if not commitment_ids or limit <= 0:
        return []
    query = _Query(search_connection())
    return await query.ids(_walk_sql(query, project_id, commitment_ids, (), None, limit))


@dataclass(frozen=True)
class RankedMatches:
    """`ranked_matches`' answer: the invoices, ranked, and (when it was asked to count) how
    many match in all, counted no further than the cap it was given."""

    invoice_ids: list[int]
    counted: int | None = None


async def ranked_matches(
    project_id: int,
    commitment_ids: Collection[int],
    terms: SearchTerms,
    limit: int,
    count_cap: int = 0,
) -> RankedMatches:
    """The first ``limit`` invoices among ``commitment_ids`` matching every pattern, ranked
    (see the module contract). With ``count_cap``, also how many match, up to it: the last
    rank's menu-order walk then reads up to ``count_cap`` matches once and serves both (a
    separate count would walk the same rows again)."""
    if not commitment_ids or not terms.patterns or limit <= 0:
        return RankedMatches([])
    connection = search_connection()
    chosen = await _exact_matches(connection, project_id, commitment_ids, terms, limit)
    if len(chosen) < limit:
        chosen += await _prefix_matches(
            connection, project_id, commitment_ids, terms, limit - len(chosen)
        )
    if len(chosen) >= limit:
        return RankedMatches(chosen)
    wanted = limit - len(chosen)
    counted = None
    if count_cap > wanted:
        query = _Query(connection)
        prefixed = f"CASE WHEN {_prefix_condition(query, terms.keys)} THEN 1 ELSE 0 END"
        select = f"s.invoice_id, {prefixed} AS prefixed"
        sql = _walk_sql(query, project_id, commitment_ids, terms.patterns, None, count_cap, select)
        _, rows = await connection.execute_query(sql, query.values)
        counted = len(rows)
        rest = [int(row["invoice_id"]) for row in rows if not int(row["prefixed"])][:wanted]
        if len(rest) == wanted or counted < count_cap:  # else the rest lies beyond the cap
            return RankedMatches(chosen + rest, counted)
    query = _Query(connection)
    sql = _walk_sql(
        query,
        project_id,
        commitment_ids,
        terms.patterns,
        lambda query: f"NOT ({_prefix_condition(query, terms.keys)})",
        wanted,
    )
    return RankedMatches(chosen + await query.ids(sql), counted)


@dataclass(frozen=True)
class Candidates:
    """`candidates`' answer: ``ranked`` (the first matches, ranked) and ``total`` (how many
    matched), or ``ranked`` None with ``more_than_cap`` (more matched) or without it (the text
    index cannot serve these patterns, or on PostgreSQL a sample says that more than the cap
    match: `MATCH_SAMPLE_ROWS`)."""

    ranked: list[int] | None
    total: int = 0
    more_than_cap: bool = False


# How many matches `candidates` ranks at most, per dialect (at least what the caller counts).
# PostgreSQL's trigram index answers in no order, and its menu-order walk reads every row
# before the first match: better to rank a few thousand in the statement. SQLite's FTS5 walks
# the matches in menu order (rowid), skipping the rest: past the count, the walk is as fast.
CANDIDATE_CAP = {"postgres": 5000, "sqlite": 0}
# PostgreSQL: about how many rows `candidates` first samples (whole pages, spread over the
# table) to guess how many invoices match. When the guess is over its cap, counting up to the
# cap would read ``cap / density`` rows (31,000 for a word in one invoice in six) to learn only
# that more matched: `candidates` then leaves the words to the menu-order walk at once.
MATCH_SAMPLE_ROWS = 2000


async def candidates(
    project_id: int,
    commitment_ids: Collection[int],
    terms: SearchTerms,
    at_least: int,
    limit: int,
) -> Candidates:
    """The first ``limit`` invoices among ``commitment_ids`` matching every pattern, ranked
    (see the module contract), and how many match, looked up through the text index
    (PostgreSQL: the trigram GIN index; SQLite: FTS5) when at most a cap (``at_least`` or the
    dialect's `CANDIDATE_CAP`) match; else the menu-order walk finds the first ones sooner.
    The matches are ranked and counted in the statement: only ``limit`` ids come back. SQLite
    cannot look up patterns shorter than a trigram: when all are, nothing is read."""
    if not commitment_ids or not terms.patterns or limit <= 0:
        return Candidates([])
    query = _Query(search_connection())
    cap = max(at_least, CANDIDATE_CAP.get(query.connection.capabilities.dialect, 0))
    columns = "s.invoice_id, s.menu_order, s.invoice_key, s.contract_key"
    if query.postgres:
        if await _guessed_matches(project_id, commitment_ids, terms.patterns) > cap:
            return Candidates(None)
        # No ORDER BY: the planner then reads the trigram index (or, for a very common word,
        # the table until cap + 1 matches) instead of walking the whole menu order.
        found = (
            f"SELECT {columns} FROM {SEARCH_TABLE} AS s WHERE s.project_id = "
            f"{query.param(project_id)} AND s.commitment_id {query.among(commitment_ids)} "
            f"AND {_like_all(query, terms.patterns)} LIMIT {query.param(cap + 1)}"
        )
    elif any(len(pattern) >= TRIGRAM for pattern in terms.patterns):
        found = _walk_sql(query, project_id, commitment_ids, terms.patterns, None, cap + 1, columns)
    else:
        return Candidates(None)
    # The rank of each match: 0 when a word is its invoice or contract number, 1 when a word
    # begins one of them, else 2 (`substr(...) = word`: whatever the collation).
    exact = " OR ".join(f"m.{key} = {query.param(word)}" for word in terms.keys for key in KEYS)
    begins = " OR ".join(
        f"substr(m.{key}, 1, {query.param(len(word))}) = {query.param(word)}"
        for word in terms.keys
        for key in KEYS
    )
    sql = (
        f"SELECT m.invoice_id, COUNT(*) OVER () AS total FROM ({found}) AS m "
        f"ORDER BY CASE WHEN {exact} THEN 0 WHEN {begins} THEN 1 ELSE 2 END, m.menu_order "
        f"LIMIT {query.param(limit)}"
    )
    _, rows = await query.connection.execute_query(sql, query.values)
    total = int(rows[0]["total"]) if rows else 0
    if total > cap:
        return Candidates(None, more_than_cap=True)
    return Candidates([int(row["invoice_id"]) for row in rows], total)


async def _guessed_matches(
    project_id: int, commitment_ids: Collection[int], patterns: Sequence[str]
) -> float:
    """PostgreSQL: about how many invoices among ``commitment_ids`` match every pattern, from
    a sample of about `MATCH_SAMPLE_ROWS` rows (whole pages, the same ones every time)."""
    query = _Query(search_connection())
    table_rows = f"(SELECT reltuples FROM pg_class WHERE oid = '{SEARCH_TABLE}'::regclass)"
    _, rows = await query.connection.execute_query(
        f"SELECT COUNT(*) AS sampled, COUNT(*) FILTER (WHERE s.project_id = "
        f"{query.param(project_id)} AND s.commitment_id {query.among(commitment_ids)} "
        f"AND {_like_all(query, patterns)}) AS hits, {table_rows} AS table_rows "
        f"FROM {SEARCH_TABLE} AS s TABLESAMPLE SYSTEM (LEAST(100, "
        f"{query.param(MATCH_SAMPLE_ROWS * 100.0)} / GREATEST({table_rows}, 1))) REPEATABLE (0)",
        query.values,
    )
    sampled, hits, table_rows = (rows[0][key] for key in ("sampled", "hits", "table_rows"))
    return int(hits) * max(float(table_rows), int(sampled)) / max(int(sampled), 1)


async def count_matches(
    project_id: int, commitment_ids: Collection[int], patterns: Sequence[str], cap: int
) -> int:
    """How many invoices among ``commitment_ids`` match every pattern (none: all of them),
    counting no further than ``cap``."""
    if not commitment_ids:
        return 0
    query = _Query(search_connection())
    inner = _walk_sql(query, project_id, commitment_ids, patterns, None, cap, select="1 AS hit")
    _, rows = await query.connection.execute_query(
        f"SELECT COUNT(*) AS n FROM ({inner}) AS hits", query.values
    )
    return int(rows[0]["n"])


# --- the three ranks -------------------------------------------------------------------------

KEYS = ("invoice_key", "contract_key")


async def _exact_matches(
    connection: BaseDBAsyncClient,
    project_id: int,
    commitment_ids: Collection[int],
    terms: SearchTerms,
    limit: int,
) -> list[int]:
    """Rank 1: a word is the invoice number or the contract number (from their indexes)."""
    query = _Query(connection)
    parts = [
        f"SELECT s.invoice_id, s.menu_order FROM {query.table(key)} "
        f"WHERE s.project_id = {query.param(project_id)} AND s.{key} {query.among(terms.keys)} "
        f"AND s.commitment_id {query.among(commitment_ids)} "
        f"AND {_like_all(query, terms.patterns)}"
        for key in KEYS
    ]
    sql = f"{' UNION '.join(parts)} ORDER BY menu_order LIMIT {query.param(limit)}"
    return await query.ids(sql)


async def _prefix_matches(
    connection: BaseDBAsyncClient,
    project_id: int,
    commitment_ids: Collection[int],
    terms: SearchTerms,
    limit: int,
) -> list[int]:
    """Rank 2: a word begins the invoice number or the contract number (and none equals it).

    From the numbers' indexes when few invoices qualify, else by walking the matches in menu
    order (they are then many, so the first ones come soon)."""
    counting = _Query(connection)
    candidates = " UNION ALL ".join(
        f"SELECT 1 AS hit FROM {counting.table(key)} WHERE s.project_id = "
        f"{counting.param(project_id)} AND {_starts_with(counting, key, word)}"
        for word in terms.keys
        for key in KEYS
    )
    _, rows = await connection.execute_query(
        f"SELECT COUNT(*) AS n FROM ({candidates} LIMIT {counting.param(PREFIX_INDEX_LIMIT + 1)})"
        " AS candidates",
        counting.values,
    )
    found = int(rows[0]["n"])
    if found == 0:
        return []

    def not_exact(query: _Query) -> str:
        return (
            f"NOT (s.invoice_key {query.among(terms.keys)} "
            f"OR s.contract_key {query.among(terms.keys)})"
        )

    def prefix_not_exact(query: _Query) -> str:
        return f"({_prefix_condition(query, terms.keys)}) AND {not_exact(query)}"

    query = _Query(connection)
    if found > PREFIX_INDEX_LIMIT:
        sql = _walk_sql(query, project_id, commitment_ids, terms.patterns, prefix_not_exact, limit)
        return await query.ids(sql)
    parts = [
        f"SELECT s.invoice_id, s.menu_order FROM {query.table(key)} WHERE s.project_id = "
        f"{query.param(project_id)} AND {_starts_with(query, key, word)} AND {not_exact(query)} "
        f"AND s.commitment_id {query.among(commitment_ids)} "
        f"AND {_like_all(query, terms.patterns)}"
        for word in terms.keys
        for key in KEYS
    ]
    sql = f"{' UNION '.join(parts)} ORDER BY menu_order LIMIT {query.param(limit)}"
    return await query.ids(sql)


# A condition is written where it stands in the statement (SQLite's ``?`` are positional).
Condition = Callable[["_Query"], str]


def _walk_sql(
    query: _Query,
    project_id: int,
    commitment_ids: Collection[int],
    patterns: Sequence[str],
    condition: Condition | None,
    limit: int,
    select: str = "s.invoice_id",
) -> str:
    """Matches of every pattern in menu order, meeting ``condition``: on SQLite through FTS5
    when a pattern is long enough for trigrams (its rowid is the menu order), else (and on
    PostgreSQL, whose planner picks the trigram index or the menu-order index) from
    ``invoice_search``."""
    long_patterns = [pattern for pattern in patterns if len(pattern) >= TRIGRAM]
    if query.postgres or not long_patterns:
        return (
            f"SELECT {select} FROM {query.table('menu_order')} WHERE s.project_id = "
            f"{query.param(project_id)} AND s.commitment_id {query.among(commitment_ids)} "
            f"AND {_like_all(query, patterns)}{_and(query, condition)} ORDER BY s.menu_order "
            f"LIMIT {query.param(limit)}"
        )
    phrases = " AND ".join('"' + pattern.replace('"', '""') + '"' for pattern in long_patterns)
    short_patterns = [pattern for pattern in patterns if len(pattern) < TRIGRAM]
    fts = SEARCH_FTS_TABLE
    # Parameters are added in the order they stand in the text (SQLite's are positional).
    sql = f"SELECT {select} FROM {fts} JOIN {SEARCH_TABLE} AS s ON s.menu_order = {fts}.rowid "
    sql += f"WHERE {fts} MATCH {query.param(phrases)} AND {fts}.rowid BETWEEN "
    sql += f"(SELECT MIN(menu_order) FROM {SEARCH_TABLE} WHERE project_id = "
    sql += f"{query.param(project_id)}) AND (SELECT MAX(menu_order) FROM {SEARCH_TABLE} "
    sql += f"WHERE project_id = {query.param(project_id)}) "
    sql += f"AND s.project_id = {query.param(project_id)} "
    sql += f"AND s.commitment_id {query.among(commitment_ids)}"
    if short_patterns:
        sql += f" AND {_like_all(query, short_patterns)}"
    sql += _and(query, condition)
    sql += f" ORDER BY {fts}.rowid LIMIT {query.param(limit)}"
    return sql


# --- SQL pieces ------------------------------------------------------------------------------


def _and(query: _Query, condition: Condition | None) -> str:
    return f" AND {condition(query)}" if condition else ""


def _like_all(query: _Query, patterns: Sequence[str]) -> str:
    """Every pattern is inside ``search_text``."""
    if not patterns:
        return "1 = 1"
    return " AND ".join(
        f"s.search_text LIKE {query.pattern('%' + _escape_like(pattern) + '%')} ESCAPE '\\'"
        for pattern in patterns
    )


def _starts_with(query: _Query, key: str, word: str) -> str:
    """``s.<key>`` begins with ``word`` (a range, so the key's index serves it)."""
    return f"(s.{key} >= {query.param(word)} AND s.{key} < {query.param(word + PREFIX_END)})"


def _prefix_condition(query: _Query, words: Sequence[str]) -> str:
    """Some word begins the invoice number or the contract number."""
    return " OR ".join(_starts_with(query, key, word) for word in words for key in KEYS)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _is_postgres(connection: BaseDBAsyncClient) -> bool:
    return connection.capabilities.dialect == "postgres"


# SQLite plans these statements without statistics: name the index each one is written for.
_SQLITE_INDEXES = {
    "menu_order": "invoice_search_menu",
    "invoice_key": "invoice_search_invoice_key",
    "contract_key": "invoice_search_contract_key",
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _literal_int(value: int) -> str:
    """An integer as PostgreSQL statement text (ids, limits). Not a parameter: after five runs
    of one prepared statement the server may switch to a generic plan, made without knowing
    the LIMIT or the ids; for the trigram candidates it read 5× longer (10 → 50 ms)."""
    return str(int(value))


class _Query:
    """Builds one statement's parameters in the connection's placeholder style."""

    def __init__(self, connection: BaseDBAsyncClient) -> None:
        self.connection = connection
        self.postgres = _is_postgres(connection)
        self.values: list[Any] = []

    def table(self, column: str) -> str:
        """``invoice_search AS s``, on SQLite read through the index on ``column``."""
        if self.postgres:
            return f"{SEARCH_TABLE} AS s"
        return f"{SEARCH_TABLE} AS s INDEXED BY {_SQLITE_INDEXES[column]}"

    def param(self, value: Any) -> str:
        """A value; on PostgreSQL an integer is written into the statement (`_literal_int`)."""
        if self.postgres and _is_int(value):
            return _literal_int(value)
        self.values.append(value)
        return f"${len(self.values)}" if self.postgres else "?"

    def pattern(self, text: str) -> str:
        """A LIKE pattern: on PostgreSQL written into the statement as an escaped literal (the
        planner must see it to choose between the trigram index and the menu-order walk; as a
        parameter of a prepared statement, asyncpg's generic plan walks the whole table even
        for a word nothing matches)."""
        if not self.postgres:
            return self.param(text)
        return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"

    def among(self, values: Collection[Any]) -> str:
        """``IN (…)`` for the given values (an array parameter on PostgreSQL)."""
        listed = sorted(values)
        if self.postgres and listed and all(_is_int(value) for value in listed):
            return f"= ANY(ARRAY[{', '.join(_literal_int(value) for value in listed)}]::bigint[])"
        if self.postgres:
            return f"= ANY({self.param(listed)})"
        return f"IN ({', '.join(self.param(value) for value in listed)})"

    async def ids(self, sql: str) -> list[int]:
        _, rows = await self.connection.execute_query(sql, self.values)
        return [int(row["invoice_id"]) for row in rows]
