"""The invoice search: what it finds (`search_invoices`) and the index it reads
(`refresh_invoice_search`, to call whenever a project's invoices, commitments or billing
periods were written).

- Every word must match: an invoice matches when each typed word is in one of its fields,
  where a word of the field starts (`commands.text_search`). The fields
  (`invoice_search_text`): contract number and title, vendor, application number (``#12``),
  the subcontractor's invoice number, billing period (position, month names, dates), status
  label and the amount due. Case, accents and punctuation inside numbers do not matter.
- Ranking: a word equal to the invoice number or the contract number first, then a word that
  begins one of them, then the rest; within each, the unfiltered menu's order (`menu_sort_key`:
  billing period newest first, invoices whose period is missing last; then the contract in
  natural order; then the application number, highest first).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from commands.labels import natural_key, status_label
from commands.text_search import normalize_search_text, query_words, search_pattern
from pdf.formatting import format_money
from storage.search_index import (
    IndexedInvoice,
    IndexedPeriod,
    SearchEntry,
    SearchTerms,
    candidates,
    count_matches,
    menu_invoice_ids,
    place_entries,
    project_invoice_facts,
    project_menu_orders,
    ranked_matches,
    replace_project_entries,
    update_entries,
)

# Counting the matches beyond those shown stops here ("901+ more match").
COUNT_CAP = 1_000
FIELD_SEPARATOR = " "  # typed words hold no space, so none spans two fields


@dataclass(frozen=True)
class InvoiceMatches:
    """The invoices to show, in order, and how many more matched (`more_at_least`: the count
    stopped at `COUNT_CAP`, there may be more)."""

    invoice_ids: list[int]
    more: int = 0
    more_at_least: bool = False


async def search_invoices(
    project_id: int, commitment_ids: Collection[int], query: str, limit: int
) -> InvoiceMatches:
    """The invoices of ``commitment_ids`` matching ``query`` (all of them when it has no
    words), ranked; at most ``limit`` entries in all: when more match, ``limit - 1`` invoices
    and the count of the rest, for a closing "type more" option."""
    words = query_words(query)
    terms = SearchTerms(tuple(words), tuple(search_pattern(word) for word in words))
    if not words:
        chosen = await menu_invoice_ids(project_id, commitment_ids, limit)
        total = None
    else:
        indexed = await candidates(project_id, commitment_ids, terms, COUNT_CAP, limit)
        if indexed.ranked is not None:  # few matches: ranked and counted by the index
            chosen, total = indexed.ranked, indexed.total
        else:
            # Over the cap, the count is known; else the walk counts as it goes.
            count_cap = 0 if indexed.more_than_cap else COUNT_CAP
            ranked = await ranked_matches(project_id, commitment_ids, terms, limit, count_cap)
            chosen = ranked.invoice_ids
            total = COUNT_CAP if indexed.more_than_cap else ranked.counted
    if len(chosen) < limit or limit < 2:
        return InvoiceMatches(chosen)
    if total is None:
        total = await count_matches(project_id, commitment_ids, terms.patterns, COUNT_CAP)
    total = min(total, COUNT_CAP)  # the index may count further (`CANDIDATE_CAP`)
    if total <= limit:
        return InvoiceMatches(chosen)
    shown = chosen[: limit - 1]
    return InvoiceMatches(shown, more=total - len(shown), more_at_least=total >= COUNT_CAP)


async def refresh_invoice_search(
    project_id: int,
    connection: BaseDBAsyncClient | None = None,
    invoice_ids: Collection[int] | None = None,
    placed: Collection[int] = (),
) -> int:
    """Bring the project's search index up to date with its invoices, commitments and billing
    periods (on ``connection``, e.g. the writer's open transaction; else in a transaction of its
    own). ``invoice_ids``: only these invoices changed; ``placed``: those of them that are new or
    may have moved in the menu's order (`menu_sort_key`). Their entries are rewritten where they
    differ and the new or moved ones are put at their place between the others (which keep
    theirs; the project's facts are read to find it); no other entry is written. None: the
    whole project is rewritten (also the fallback when no place is free). Returns the number
    of invoices indexed (those refreshed, for ``invoice_ids``)."""
    if connection is not None:
        return await _refresh(connection, project_id, invoice_ids, placed)
    async with in_transaction() as transaction:
        return await _refresh(transaction, project_id, invoice_ids, placed)


async def _refresh(
    connection: BaseDBAsyncClient,
    project_id: int,
    invoice_ids: Collection[int] | None,
    placed: Collection[int],
) -> int:
    if invoice_ids is not None and not placed:
        if not invoice_ids:
            return 0
        invoices, periods = await project_invoice_facts(connection, project_id, invoice_ids)
        texts = _SearchTexts(periods)
        if await update_entries(connection, project_id, [_entry(i, texts) for i in invoices]):
            return len(invoices)
        # An invoice had no entry yet: it needs a place in the menu's order.
        placed = {invoice.invoice_id for invoice in invoices}
    invoices, periods = await project_invoice_facts(connection, project_id)
    ordered = sorted(invoices, key=lambda invoice: menu_sort_key(invoice, periods))
    texts = _SearchTexts(periods)
    if invoice_ids is not None:
        current = await project_menu_orders(connection, project_id)
        ordered_ids = [invoice.invoice_id for invoice in ordered]
        # Placed between the others: the new or moved ones, and any the index lacks.
        placed = set(placed)
        moving = {i for i in ordered_ids if i in placed or i not in current}
        wanted = moving | set(invoice_ids)
        entries = {i.invoice_id: _entry(i, texts) for i in ordered if i.invoice_id in wanted}
        moved = [entry for invoice_id, entry in entries.items() if invoice_id in moving]
        if await place_entries(connection, project_id, ordered_ids, current, moved):
            kept = [entry for invoice_id, entry in entries.items() if invoice_id not in moving]
            await update_entries(connection, project_id, kept)
            return len(entries)
    entries_in_order = [_entry(invoice, texts) for invoice in ordered]
    await replace_project_entries(connection, project_id, entries_in_order)
    return len(entries_in_order)


def _entry(invoice: IndexedInvoice, texts: _SearchTexts) -> SearchEntry:
    return SearchEntry(
        invoice_id=invoice.invoice_id,
        commitment_id=invoice.commitment_id,
        invoice_key=normalize_search_text(invoice.invoice_number or ""),
        contract_key=normalize_search_text(invoice.contract_number),
        search_text=texts.of(invoice),
    )


def menu_sort_key(
    invoice: IndexedInvoice, periods: dict[int, IndexedPeriod]
) -> tuple[bool, int, tuple[tuple[int, int | str], ...], int, int]:
    """The unfiltered menu's order: billing period newest first (missing periods last), then
    the contract in natural order (SC-2 before SC-10), then the application number, highest
    first."""
    period = periods.get(invoice.period_id)
    return (
        period is None,
        -(period.position if period else 0),
        natural_key(invoice.contract_number),
        -invoice.application_number,
        -invoice.invoice_id,
    )


def invoice_search_text(invoice: IndexedInvoice, period: IndexedPeriod | None) -> str:
    """The text an invoice is found by, normalised and its word starts marked
    (`search_pattern`); its fields apart, so no typed word spans two."""
    return _SearchTexts({invoice.period_id: period} if period else {}).of(invoice)


class _SearchTexts:
    """Makes search texts, normalising each contract's and period's part once."""

    def __init__(self, periods: dict[int, IndexedPeriod]) -> None:
        self._periods = periods
        self._parts: dict[tuple[str, ...], str] = {}

    def of(self, invoice: IndexedInvoice) -> str:
        period = self._periods.get(invoice.period_id)
        if period is not None:
            period_part = self._part(
                f"Billing period {period.position}",
                period.start_date.isoformat(),
                period.end_date.isoformat(),
                f"{period.start_date:%B %Y}",  # "oct" finds "october"
            )
        else:
            month = invoice.requisition_end
            period_part = self._part("Missing billing period", f"{month:%B %Y}" if month else "")
        own = [
            f"#{invoice.application_number}",
            invoice.invoice_number or "",
            status_label(invoice.status),
            format_money(invoice.current_payment_due),
        ]
        return " ".join(
            part
            for part in (
                self._part(invoice.contract_number, invoice.contract_title, invoice.vendor_name),
                search_pattern(normalize_search_text(FIELD_SEPARATOR.join(own))),
                period_part,
            )
            if part
        )

    def _part(self, *fields: str) -> str:
        """The fields' marked, normalised text (computed once per distinct fields)."""
        known = self._parts.get(fields)
        if known is None:
            joined = FIELD_SEPARATOR.join(field for field in fields if field)
            known = self._parts[fields] = search_pattern(normalize_search_text(joined))
        return known
