"""The invoice search (issue 15) on SQLite and PostgreSQL: every word must match where a word
of a field starts, ranking exact/prefix/rest in the unfiltered menu's order, at most ``limit``
options with a closing "type more" one, and labels that always identify the invoice."""

from __future__ import annotations

import importlib
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from tortoise import connections

from commands.access import Requester, compile_access, search_invoice_options
from commands.import_bundle import import_bundle
from commands.invoice_search import refresh_invoice_search
from commands.labels import OPTION_LABEL_LIMIT, invoice_option_label
from commands.text_search import (
    matches_every_word,
    normalize_search_text,
    query_words,
    search_pattern,
)
from storage.blobs import LocalBlobStore
from storage.models import Invoice
from storage.search_index import SearchTerms, project_entry_count, ranked_matches
from tests.storage.bundles import BundleData, sample_bundle, write_bundle

PROJECT = 562949953421312
ADMIN = Requester("admin", "dana.reyes@summit.example", "Dana Reyes")
VOLT_CONTACT = Requester("volt", "mara@volt.example", "Mara Volt")
LONG_VENDOR = "Frontier Mechanical Group of Northern California Incorporated"

# The unfiltered menu: October (SC-1, SC-10, SC-12), September (SC-2, SC-10), August, missing.
MENU = [8006, 8004, 8005, 8002, 8003, 8001, 8007]


def generated_project() -> BundleData:
    """Four contracts (one vendor with accents, one very long), seven invoices over three
    billing periods and one missing period."""
    data = sample_bundle()
    template = data.requisitions[0]
    data.billing_periods = [
        _period(801, 1, "2026-08-01", "2026-08-31"),
        _period(802, 2, "2026-09-01", "2026-09-30"),
        _period(803, 3, "2026-10-01", "2026-10-31"),
    ]
    base = data.commitments[0]
    data.commitments = [
        {**base, "id": 601, "number": "SC-2", "title": "Electrical", "private": False},
        {
            **base,
            "id": 602,
            "number": "SC-10",
            "title": "Low voltage",
            "vendor": {"id": 72, "name": "Électricité Québec Ltée"},
            "invoice_contacts": [],
        },
        {
            **base,
            "id": 603,
            "number": "SC-12",
            "title": "HVAC",
            "vendor": {"id": 73, "name": LONG_VENDOR},
            "invoice_contacts": [],
        },
        {
            **base,
            "id": 604,
            "number": "SC-1",
            "title": "Concrete",
            "vendor": {"id": 74, "name": "Acme Concrete"},
            "invoice_contacts": [],
        },
    ]
    rows = [
        (8001, 601, 11, "V-1043", 801, "approved", "24,525.00"),
        (8002, 601, 12, "V-1100", 802, "under_review", "12,000.00"),
        (8003, 602, 12, "EQ-12", 802, "approved", "5,000.00"),
        (8004, 602, 13, "2026-0012", 803, "approved_as_noted", "24,525.50"),
        (8005, 603, 1, "FMG-77", 803, "pending_owner_approval", "1,200.00"),
        (8006, 604, 12, "SC-12", 803, "draft", "330.00"),
        (8007, 604, 3, None, 899, "revise_and_resubmit", "99.99"),
    ]
    data.requisitions = []
    for invoice_id, commitment_id, number, invoice_number, period_id, status, due in rows:
        requisition = {
            **template,
            "id": invoice_id,
            "commitment_id": commitment_id,
            "number": number,
            "invoice_number": invoice_number,
            "period_id": period_id,
            "status": status,
            "summary": {**template["summary"], "current_payment_due": due},
            "items": [
                {**item, "id": invoice_id * 10 + item["position"]} for item in template["items"]
            ],
            "attachments": [],
            "signed_pdf": None,
        }
        data.requisitions.append(requisition)
    data.files = {}
    return data


def _period(period_id: int, position: int, start: str, end: str) -> dict:
    return {
        "id": period_id,
        "position": position,
        "start_date": start,
        "end_date": end,
        "due_date": None,
        "status": "open" if position == 3 else "closed",
    }


@pytest.fixture
async def project(database: str, data_dir: Path, tmp_path: Path) -> int:
    bundle = write_bundle(tmp_path / "generated", generated_project())
    await import_bundle(bundle, LocalBlobStore(data_dir))
    return PROJECT


SEARCHES = [
    pytest.param("", MENU, id="no query: the menu"),
    pytest.param("Electric 12", [8002, 8003], id="two words, two fields"),
    pytest.param("electric   12", [8002, 8003], id="spaces"),
    pytest.param("Acme 13", [], id="two words, no invoice has both"),
    pytest.param("24525", [8004, 8001], id="amount digits"),
    pytest.param("24,525", [8004, 8001], id="amount with comma"),
    pytest.param("$24,525.00", [8001], id="amount as shown"),
    pytest.param("24,525.5", [8004], id="amount with cents"),
    pytest.param("QUÉBEC", [8004, 8003], id="accents typed"),
    pytest.param("quebec electricite", [8004, 8003], id="accents not typed"),
    pytest.param("V-1043", [8001], id="invoice number"),
    pytest.param("v-1", [8002, 8001], id="invoice number prefix"),
    pytest.param("2026-0012", [8004], id="invoice number with a dash between digits"),
    pytest.param("SC-12", [8006, 8005], id="exact invoice number and contract number"),
    pytest.param("SC-1", [8006, 8007, 8004, 8005, 8003], id="exact, then prefix"),
    # "2026" begins 8004's invoice number (2026-0012): a prefix match, ranked first.
    pytest.param("Oct 2026", [8004, 8006, 8005], id="period name"),
    pytest.param("october", [8006, 8004, 8005], id="period month"),
    pytest.param("2026-10", [8006, 8004, 8005], id="period date"),
    pytest.param("Sep 2026", [8002, 8003, 8007], id="month of a missing period's invoice"),
    pytest.param("approved", [8004, 8003, 8001], id="status"),
    pytest.param("approved as noted", [8004], id="status words"),
    pytest.param("#12", [8006, 8002, 8003], id="application number"),
    pytest.param("frontier california", [8005], id="start and end of a long vendor"),
    pytest.param("mech grou", [8005], id="word beginnings"),
    pytest.param("lectric", [], id="not inside a word"),
    pytest.param("zzz", [], id="no match"),
    pytest.param("100%", [], id="LIKE wildcards are text"),
]


@pytest.mark.parametrize(("query", "expected"), SEARCHES)
async def test_search_finds_what_people_type(project: int, query: str, expected: list) -> None:
    menu = await search_invoice_options(ADMIN, project, query)
    assert [option.invoice_id for option in menu.options] == expected
    assert menu.more == 0


async def test_a_full_menu_ends_with_how_many_more(project: int) -> None:
    menu = await search_invoice_options(ADMIN, project, "", limit=3)
    assert [option.invoice_id for option in menu.options] == MENU[:2]
    assert (menu.more, menu.more_at_least) == (5, False)
    assert menu.more_label == "5 more match: type more to narrow the list"

    ranked = await search_invoice_options(ADMIN, project, "sc-1", limit=4)
    assert [option.invoice_id for option in ranked.options] == [8006, 8007, 8004]
    assert ranked.more == 2

    exactly = await search_invoice_options(ADMIN, project, "sc-1", limit=5)
    assert [option.invoice_id for option in exactly.options] == [8006, 8007, 8004, 8005, 8003]
    assert exactly.more == 0


@pytest.mark.parametrize(("query", "expected"), [s for s in SEARCHES if s.values[0].strip()])
async def test_the_menu_order_walk_counts_the_matches_as_it_ranks(
    project: int, query: str, expected: list
) -> None:
    """`ranked_matches` with a count cap (the walk reads up to the cap once): the same invoices
    as without, and the count of all matches up to the cap, also when the cap stops the walk
    before the last rank is full."""
    commitment_ids = (await compile_access(ADMIN, project)).compilable_commitment_ids
    words = query_words(query)
    terms = SearchTerms(tuple(words), tuple(search_pattern(word) for word in words))
    for limit in (1, 2, len(MENU)):
        plain = await ranked_matches(project, commitment_ids, terms, limit)
        assert plain.invoice_ids == expected[:limit] and plain.counted is None
        for cap in (1, 2, 3, len(MENU) + 1):
            counting = await ranked_matches(project, commitment_ids, terms, limit, cap)
            assert counting.invoice_ids == expected[:limit]
            if counting.counted is not None:
                assert counting.counted == min(len(expected), cap)
            else:  # the first ranks filled the list: nothing walked, nothing counted
                assert len(counting.invoice_ids) == limit or cap <= limit


async def test_search_offers_only_what_the_requester_may_compile(project: int) -> None:
    menu = await search_invoice_options(VOLT_CONTACT, project, "12")
    assert [option.invoice_id for option in menu.options] == [8002]
    everything = await search_invoice_options(VOLT_CONTACT, project, "")
    assert [option.invoice_id for option in everything.options] == [8002, 8001]


async def test_options_show_the_invoice_number_and_group_by_period(project: int) -> None:
    menu = await search_invoice_options(ADMIN, project, "V-1043")
    (option,) = menu.options
    # The group header shows the period: the label does not repeat its month.
    assert option.label == "SC-2 Volt Electric · #11 · Inv V-1043 · $24,525.00 · Approved"
    assert option.group == "Billing period 1 (Aug 1–31, 2026)"
    missing = (await search_invoice_options(ADMIN, project, "revise")).options
    assert [o.group for o in missing] == [
        "No billing period: left out if picked (fix in Procore first)"
    ]
    # Without a billing period, the month of the invoice's own dates shows.
    assert missing[0].label.startswith("SC-1 Acme Concrete · #3 · Sep 2026 · $99.99")


async def test_the_index_follows_imports_and_deletions(
    project: int, data_dir: Path, tmp_path: Path
) -> None:
    data = generated_project()
    data.commitments[0]["vendor"]["name"] = "Ampère Power"
    data.requisitions = [r for r in data.requisitions if r["id"] != 8002]
    await import_bundle(write_bundle(tmp_path / "changed", data), LocalBlobStore(data_dir))
    assert (await search_invoice_options(ADMIN, project, "V-1100")).options == []
    found = (await search_invoice_options(ADMIN, project, "ampere")).options
    assert [o.invoice_id for o in found] == [8001]
    assert await project_entry_count(project) == 6

    await Invoice.filter(id=8001).delete()  # the index row goes with its invoice
    assert await project_entry_count(project) == 5
    assert (await search_invoice_options(ADMIN, project, "ampere")).options == []
    assert await refresh_invoice_search(project) == 5


async def test_the_index_survives_a_project_whose_menu_order_is_unchanged(project: int) -> None:
    """A refresh with nothing new rewrites nothing, and a changed status is found at once."""
    connection = connections.get("default")
    _, before = await connection.execute_query("SELECT menu_order FROM invoice_search")
    await Invoice.filter(id=8005).update(status="approved")
    assert await refresh_invoice_search(project) == 7
    _, after = await connection.execute_query("SELECT menu_order FROM invoice_search")
    assert sorted(r["menu_order"] for r in before) == sorted(r["menu_order"] for r in after)
    found = (await search_invoice_options(ADMIN, project, "frontier approved")).options
    assert [o.invoice_id for o in found] == [8005]


# --- labels ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "invoice_number"),
    [
        (LONG_VENDOR, "FMG-77"),
        ("Électricité Québec Ltée", "2026-0012"),
        ("V" * 255, "INV-" + "9" * 96),  # the longest the columns hold
        ("", None),
    ],
)
def test_labels_always_identify_the_invoice(vendor: str, invoice_number: str | None) -> None:
    label = invoice_option_label(
        "SC-2026-ELEC-000123",
        vendor,
        1234,
        invoice_number,
        date(2026, 10, 1),
        Decimal("-1234567.89"),
        "pending_owner_approval",
    )
    assert len(label) <= OPTION_LABEL_LIMIT
    assert label.startswith("SC-2026-ELEC-000123 ")
    assert "#1234" in label
    if invoice_number:
        assert f"Inv {invoice_number[:9]}" in label
        assert invoice_number[-5:] in label
    if vendor:
        assert vendor[:7] in label and vendor[-4:] in label


def test_a_long_vendor_is_shortened_from_the_middle_before_the_extras_go() -> None:
    label = invoice_option_label(
        "SC-12", LONG_VENDOR, 1, "FMG-77", date(2026, 10, 1), Decimal("1200"), "approved"
    )
    assert label == "SC-12 Frontier Mecha…Incorporated · #1 · Inv FMG-77 · Oct 2026 · $1,200.00"
    assert len(label) <= OPTION_LABEL_LIMIT
    short = invoice_option_label(
        "SC-2", "Volt Electric", 11, "V-1043", date(2026, 8, 1), Decimal("24525"), "approved"
    )
    assert short == "SC-2 Volt Electric · #11 · Inv V-1043 · Aug 2026 · $24,525.00 · Approved"
    grouped = invoice_option_label(
        "SC-2", "Volt Electric", 11, "V-1043", None, Decimal("24525"), "approved"
    )
    assert grouped == "SC-2 Volt Electric · #11 · Inv V-1043 · $24,525.00 · Approved"


# --- the word rule -----------------------------------------------------------------------------


def test_the_word_rule() -> None:
    assert query_words("  Oct, 2026 (SC-12) #7 $24,525.00 oct ") == [
        "oct",
        "2026",
        "sc-12",
        "#7",
        "$2452500",
    ]
    assert normalize_search_text("Électricité  Québec 1,234.50") == "electricite quebec 123450"
    assert matches_every_word(["los", "angeles"], "America/Los_Angeles")
    assert matches_every_word(["12"], "#12", "Volt")
    assert not matches_every_word(["12"], "SC-012")
    assert not matches_every_word(["volt", "13"], "Volt Electric", "#12")
    assert matches_every_word([], "anything")


# --- the migration ------------------------------------------------------------------------------


async def test_the_migration_indexes_the_invoices_already_there(database_url: str) -> None:
    """A database migrated before the index existed gets every invoice indexed by 0004."""
    from storage.db import close_database, open_database
    from storage.models import BillingPeriod, Commitment, Project
    from storage.schema import apply_migrations

    await open_database(database_url, check_schema=False)
    try:
        search_migration = importlib.import_module("migrations.0004_invoice_search").Migration
        ((_, before_search),) = search_migration.dependencies
        await apply_migrations(upto=before_search)
        await Project.create(id=PROJECT, name="Old", company_id=1, company_name="Summit GC")
        await BillingPeriod.create(
            id=801,
            project_id=PROJECT,
            position=1,
            start_date=date(2026, 10, 1),
            end_date=date(2026, 10, 31),
            status="open",
        )
        await Commitment.create(id=601, project_id=PROJECT, number="SC-7", vendor_name="Ólafur")
        await Invoice.create(
            id=8001,
            project_id=PROJECT,
            commitment_id=601,
            number=4,
            invoice_number="OL-4",
            period_id=801,
            status="approved",
            current_payment_due=Decimal("10.00"),
        )
        await apply_migrations()
        assert await project_entry_count(PROJECT) == 1
        connection = connections.get("default")
        _, rows = await connection.execute_query("SELECT search_text FROM invoice_search")
        assert "olafur" in rows[0]["search_text"]
        assert "october" in rows[0]["search_text"]
    finally:
        await close_database()
