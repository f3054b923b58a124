"""The compile use case on the demo bundle, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from demo_requesters import ACME_CONTACT, ADMIN, STANDARD, STRANGER, VIEWER, VOLT_CONTACT
from local_compile import compile_backup
from pypdf import PdfReader
from snapshots import ADMIN as SNAPSHOT_ADMIN
from snapshots import PROJECT_ID as SNAPSHOT_PROJECT_ID
from snapshots import attachment, base_snapshot, with_invoice
from tortoise.transactions import in_transaction

from commands.access import (
    AccessDenied,
    check_selection,
    compilable_projects,
    match_project,
    search_invoice_options,
)
from commands.apply_snapshot import apply_snapshot
from commands.compile_backups import NOT_DOWNLOADED, CompileResult, TieOutNote
from commands.demo import MISSING_PERIOD_ID, PROJECT_ID
from sources.snapshot import FileRecord
from storage.blobs import LocalBlobStore
from storage.models import Backup, Invoice, Project
from tests.storage.bundles import tiny_pdf

ORDER = [9001, 9002, 9003, 9011, 9012, 9021, 9022]
MISSING_INVOICE_ID = 9023


async def all_invoice_ids() -> list[int]:
    return [
        int(i) for i in await Invoice.filter(project_id=PROJECT_ID).values_list("id", flat=True)
    ]


def outline_titles(reader: PdfReader) -> list[str]:
    return [item.title for item in reader.outline if not isinstance(item, list)]


async def test_compiles_everything_in_domain_order(demo_project: int) -> None:
    ids = await all_invoice_ids()
    result = await compile_backup(
        ADMIN, demo_project, list(reversed(ids)), timezone="America/Toronto"
    )

    assert result.status == "succeeded"
    assert result.invoice_count == 7
    assert [m.period_id for m in result.missing_periods] == [MISSING_PERIOD_ID]
    assert "SC-010" in result.missing_periods[0].invoice_label
    assert "Application #3" in result.missing_periods[0].invoice_label
    assert result.pdf_path is not None and result.pdf_path.exists()
    assert result.file_name is not None
    assert result.file_name.startswith(
        "Subcontractor invoice backup - Riverside Medical Office Building - 2026-014 - "
    )

    reader = PdfReader(result.pdf_path)
    assert len(reader.pages) == result.page_count
    titles = [t for t in outline_titles(reader) if t != "Cover"]
    expected = [
        "SC-001 Acme Concrete · Application #1",
        "SC-001 Acme Concrete · Application #2",
        "SC-001 Acme Concrete · Application #3 — does not tie out",  # the demo's deliberate one
        "SC-002 Volt Electric Co. · Application #1",
        "SC-002 Volt Electric Co. · Application #2",
        "SC-010 Polar Air Mechanical · Application #1",
        "SC-010 Polar Air Mechanical · Application #2",
    ]
    assert titles == expected
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    assert "DocuSign Certificate of Completion" in text

    reasons = {filename: reason for _, filename, reason in result.left_out_attachments}
    assert "site-photo.jpg" in reasons
    assert "payroll-locked.pdf" in reasons and "password" in reasons["payroll-locked.pdf"]
    assert "damaged-invoice-copy.pdf" in reasons
    assert "equipment-receipt.pdf" not in reasons
    assert [name for _, name in result.repaired_attachments] == ["startup-report-truncated.pdf"]
    assert "repaired and included" in result.summary_text()

    backup = await Backup.get(id=result.backup_id)
    assert backup.status == "succeeded"
    assert backup.page_count == result.page_count
    assert backup.byte_size == result.pdf_path.stat().st_size
    assert sorted(backup.invoice_ids) == sorted(ORDER)
    assert backup.requested_by == "test:admin"
    assert [e["period_id"] for e in backup.excluded] == [MISSING_PERIOD_ID]
    summary = result.summary_text()
    assert "599" not in summary  # people never read the internal id
    assert (
        "  - SC-010 Polar Air Mechanical · Application #3, $51,187.50 for Nov 1–30, 2026: its "
        "billing period does not exist in the project. Billing period 4 (Nov 1–30, 2026) covers "
        "these dates."
    ) in summary
    assert "Compiled an invoice backup of 7 invoices for Riverside Medical Office Building" in (
        summary
    )
    assert "  - SC-001 · Acme Concrete · Application #3 · " in summary
    assert "Total current payment due: $" in summary


async def test_only_missing_periods_compiles_nothing(demo_project: int) -> None:
    result = await compile_backup(ADMIN, demo_project, [9023])
    assert result.status == "nothing_to_compile"
    assert result.pdf_path is None
    assert [m.period_id for m in result.missing_periods] == [MISSING_PERIOD_ID]
    assert "No invoice backup was produced" in result.summary_text()
    backup = await Backup.get(id=result.backup_id)
    assert backup.status == "nothing_to_compile"


async def test_non_admin_is_refused_with_the_missing_permission(demo_project: int) -> None:
    with pytest.raises(AccessDenied) as refusal:
        await compile_backup(STANDARD, demo_project, [9001])
    assert "Admin" in str(refusal.value) and "Commitments" in str(refusal.value)
    assert "Dana Reyes" in str(refusal.value)
    assert await Backup.all().count() == 0


async def test_unknown_project_refusal_reveals_nothing(demo_project: int) -> None:
    with pytest.raises(AccessDenied):
        await check_selection(ADMIN, 424242, [9001], [])


async def test_the_access_check_answers_the_same_inside_a_transaction(demo_project: int) -> None:
    # Outside, its reads go out at once on pooled connections; inside, on the transaction's one
    # connection, which takes one query at a time (PostgreSQL refuses a second while one runs).
    outside = await check_selection(ADMIN, demo_project, [9001, 9011], [])
    async with in_transaction():
        inside = await check_selection(ADMIN, demo_project, [9001, 9011], [])
        with pytest.raises(AccessDenied):
            await check_selection(STRANGER, demo_project, [9001], [])
    assert inside == outside
    assert inside.visible_invoice_ids == {9001, 9011}


async def test_invoice_contacts_compile_only_their_own_when_allowed(demo_project: int) -> None:
    assert await compilable_projects(ACME_CONTACT) == []
    await Project.filter(id=demo_project).update(invoice_contacts_may_compile=True)
    assert [p.id for p in await compilable_projects(ACME_CONTACT)] == [demo_project]
    ids = await all_invoice_ids()
    checked = await check_selection(ACME_CONTACT, demo_project, ids, [])
    assert checked.visible_invoice_ids == {9001, 9002, 9003}
    result = await compile_backup(ACME_CONTACT, demo_project, [9001, 9011, 9021])
    assert result.invoice_count == 1
    assert result.unavailable_count == 2
    assert "SC-002" not in result.summary_text()


async def test_search_never_offers_hidden_invoices(demo_project: int) -> None:
    options = (await search_invoice_options(ADMIN, demo_project, "volt")).options
    assert {o.invoice_id for o in options} == {9011, 9012}
    assert all(len(o.label) <= 75 for o in options)
    assert options[0].label.startswith("SC-002 Volt Electric Co. · #2 · Inv ")
    assert "Oct" not in options[0].label  # the group header shows the period
    assert options[0].group.endswith("(Oct 1–31, 2026)")
    assert (await search_invoice_options(VIEWER, demo_project, "")).options == []
    assert (await search_invoice_options(STRANGER, demo_project, "")).options == []

    await Project.filter(id=demo_project).update(invoice_contacts_may_compile=True)
    acme = (await search_invoice_options(ACME_CONTACT, demo_project, "")).options
    assert {o.invoice_id for o in acme} == {9001, 9002, 9003}
    volt = (await search_invoice_options(VOLT_CONTACT, demo_project, "")).options
    assert {o.invoice_id for o in volt} == {9011, 9012}

    everything = (await search_invoice_options(ADMIN, demo_project, "")).options
    assert len(everything) == 8
    assert everything[-1].invoice_id == 9023
    assert everything[-1].group == "No billing period: left out if picked (fix in Procore first)"
    by_number = (await search_invoice_options(ADMIN, demo_project, "#3")).options
    assert {o.invoice_id for o in by_number} == {9003, 9023}


async def test_match_project_by_number_or_name(demo_project: int) -> None:
    assert (await match_project(ADMIN, "2026-014")).id == demo_project
    assert (await match_project(ADMIN, "riverside")).id == demo_project
    assert await match_project(STANDARD, "2026-014") is None
    assert await match_project(ADMIN, "elsewhere") is None


async def test_inactive_admin_loses_access(demo_project: int) -> None:
    from storage.models import ProjectUser

    await ProjectUser.filter(project_id=demo_project, user_id=1).update(is_active=False)
    with pytest.raises(AccessDenied):
        await compile_backup(ADMIN, demo_project, [9001])


async def test_progress_notes_follow_the_work(
    demo_project: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    from commands import compile_backups

    monkeypatch.setattr(compile_backups, "PROGRESS_POLL_SECONDS", 0.01)
    notes: list[str] = []

    async def progress(note: str) -> None:
        notes.append(note)

    result = await compile_backup(ADMIN, demo_project, ORDER, progress=progress)
    assert result.status == "succeeded"
    assert notes[:2] == ["fetching the files", "preparing 7 invoices"]
    steps = [
        r"fetching the files",
        r"preparing 7 invoices",
        r"invoice (\d) of 7: SC-\d+ \S.*",
        r"adding the cover page and bookmarks",
        r"numbering pages",
        r"writing the PDF \(\d+ pages\)",
        r"storing the PDF",
    ]
    ranks = []
    for note in notes:
        rank = next(i for i, step in enumerate(steps) if re.fullmatch(step, note))
        merged = re.fullmatch(steps[2], note)
        ranks.append((rank, int(merged.group(1)) if merged else 0))
    assert ranks == sorted(ranks)
    assert not list(result.pdf_path.parent.glob("progress.txt*"))


# --- numbers that tie out ---------------------------------------------------------------------

DEMO_FINDING = (
    "G702 line 8 (current payment due): $67,500.00 shown, line 6 - line 7 = $65,700.00 "
    "(difference $1,800.00)"
)
MISTYPED = "SC-001 Acme Concrete · Application #3"


def cover_text(reader: PdfReader, result_pages: int = 1) -> str:
    """The cover's text with its whitespace (line breaks in table cells) made single spaces."""
    return " ".join(
        " ".join(page.extract_text() or "" for page in reader.pages[:result_pages]).split()
    )


async def test_the_demo_ties_out_but_for_its_deliberate_mistake(demo_project: int) -> None:
    result = await compile_backup(ADMIN, demo_project, ORDER)

    assert result.tie_out == (TieOutNote(MISTYPED, (DEMO_FINDING,)),)
    assert result.not_tying_out == result.tie_out and result.left_out_not_tying_out == ()
    assert result.invoice_count == 7
    summary = result.summary_text()
    assert "Checks: 1 invoice does not tie out (listed on the cover page):" in summary
    assert f"  - {MISTYPED}: {DEMO_FINDING}" in summary

    reader = PdfReader(result.pdf_path)
    assert f"{MISTYPED} — does not tie out" in outline_titles(reader)
    assert sum("does not tie out" in title for title in outline_titles(reader)) == 1
    cover = cover_text(reader)
    checks = cover[cover.index("Checks") :]
    assert "1 invoice does not tie out." in checks
    assert (
        f"{MISTYPED} G702 line 8 (current payment due): line 6 - line 7 $67,500.00 $65,700.00 "
        "$1,800.00"
    ) in checks
    assert "Does not tie out" in cover[: cover.index("Checks")]  # flagged in the invoice table
    backup = await Backup.get(id=result.backup_id)
    assert f"{MISTYPED}: does not tie out: {DEMO_FINDING}" in backup.warnings


async def test_a_cover_says_so_when_every_invoice_ties_out(demo_project: int) -> None:
    result = await compile_backup(ADMIN, demo_project, [9001, 9011, 9021])
    assert result.tie_out == ()
    assert "tie out" not in result.summary_text()
    reader = PdfReader(result.pdf_path)
    assert "Every invoice's numbers tie out" in cover_text(reader)
    assert not any("does not tie out" in title for title in outline_titles(reader))


async def test_the_tie_out_setting_leaves_such_invoices_out(demo_project: int) -> None:
    await Project.filter(id=demo_project).update(tie_out_blocks=True)
    result = await compile_backup(ADMIN, demo_project, [9003, 9002])

    assert result.status == "succeeded" and result.invoice_count == 1
    assert result.tie_out == (TieOutNote(MISTYPED, (DEMO_FINDING,), left_out=True),)
    assert result.not_tying_out == ()
    summary = result.summary_text()
    assert "Left out: 1 invoice whose numbers do not tie out:" in summary
    assert f"  - {MISTYPED}: {DEMO_FINDING}" in summary
    assert "correct the invoice in Procore" in summary
    reader = PdfReader(result.pdf_path)
    assert [t for t in outline_titles(reader) if t != "Cover"] == [
        "SC-001 Acme Concrete · Application #2"
    ]
    cover = cover_text(reader)
    not_included = cover[cover.index("Not included") :]
    assert f"{MISTYPED} does not tie out: {DEMO_FINDING}" in not_included
    assert "Every invoice's numbers tie out" in cover  # the ones in the backup do
    backup = await Backup.get(id=result.backup_id)
    assert backup.invoice_ids == [9002]
    assert {"invoice_id": 9003, "reason": "does not tie out"} in backup.excluded


async def test_when_the_setting_stops_every_invoice_nothing_is_compiled(demo_project: int) -> None:
    await Project.filter(id=demo_project).update(tie_out_blocks=True)
    result = await compile_backup(ADMIN, demo_project, [9003, MISSING_INVOICE_ID])
    assert result.status == "nothing_to_compile" and result.pdf_path is None
    assert result.left_out_not_tying_out == (TieOutNote(MISTYPED, (DEMO_FINDING,), True),)
    assert [m.period_id for m in result.missing_periods] == [MISSING_PERIOD_ID]
    summary = result.summary_text()
    assert "No invoice backup was produced" in summary
    assert "Left out: 1 invoice whose numbers do not tie out:" in summary
    backup = await Backup.get(id=result.backup_id)
    assert backup.status == "nothing_to_compile"
    assert any("left out, does not tie out" in warning for warning in backup.warnings)


def test_a_compile_result_keeps_its_findings_through_json_and_reads_older_json() -> None:
    result = CompileResult(
        status="succeeded",
        backup_id=3,
        pdf_path=None,
        file_name="b.pdf",
        project_name="P",
        invoice_count=2,
        page_count=9,
        byte_size=1000,
        missing_periods=(),
        left_out_attachments=(),
        tie_out=(
            TieOutNote("SC-1 · #1", ("a", "b")),
            TieOutNote("SC-1 · #2", ("c",), left_out=True),
        ),
    )
    stored = json.loads(json.dumps(result.to_json()))
    assert CompileResult.from_json(stored) == result
    del stored["tie_out"]  # what a job stored before this field existed
    assert CompileResult.from_json(stored) == replace(result, tie_out=())


async def test_files_not_downloaded_yet_are_left_out_and_named(
    database: str, data_dir: Path
) -> None:
    """A Procore file not downloaded yet (sha256 NULL) never crashes the compile: it is left out
    with its reason, on the cover and in the result; the stored files still merge."""
    blobs = LocalBlobStore(data_dir)
    stored = await blobs.put_bytes(tiny_pdf("Stored receipt"))
    snapshot = with_invoice(
        base_snapshot(),
        7001,
        attachments=(
            attachment(60001, 0, "stored-receipt.pdf", stored),
            attachment(60002, 1, "lien-waiver.pdf", None),
        ),
        signed_pdf=FileRecord(filename="signed.pdf"),
    )
    await apply_snapshot(snapshot)

    result = await compile_backup(SNAPSHOT_ADMIN, SNAPSHOT_PROJECT_ID, [7001], blobs=blobs)

    assert result.status == "succeeded"
    reasons = {filename: reason for _, filename, reason in result.left_out_attachments}
    assert reasons == {
        "lien-waiver.pdf": NOT_DOWNLOADED,
        "signed.pdf": f"signed PDF {NOT_DOWNLOADED}; generated invoice used",
    }
    assert result.pdf_path is not None
    text = "\n".join(page.extract_text() or "" for page in PdfReader(result.pdf_path).pages)
    assert "Stored receipt" in text
    assert "lien-waiver.pdf" in text and "not downloaded from Procore yet" in text
    backup = await Backup.get(id=result.backup_id)
    assert any("lien-waiver.pdf (not downloaded from Procore yet)" in w for w in backup.warnings)


async def test_the_projects_words_reach_the_cover_and_the_hints(demo_project: int) -> None:
    await Project.filter(id=demo_project).update(
        dictionary={
            "commitments": "Subcontracts",
            "invoicing": "Progress Billings",
            "subcontractor": "Trade Partner",
        }
    )
    result = await compile_backup(ADMIN, demo_project, [9001, MISSING_INVOICE_ID])
    assert result.pdf_path is not None
    reader = PdfReader(result.pdf_path)
    assert (reader.pages[0].extract_text() or "").startswith("Trade Partner invoice backup")
    assert reader.metadata is not None and str(reader.metadata.title).startswith(
        "Trade Partner invoice backup - "
    )
    assert result.fix_hint() == (
        "To include it, move the invoice to an existing billing period in Procore (Progress "
        "Billings tool), or create the missing period there (Progress Billings settings, billing "
        "periods), then compile again."
    )
    assert CompileResult.from_json(json.loads(json.dumps(result.to_json()))) == result
