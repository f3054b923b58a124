"""`import_bundle` on SQLite and PostgreSQL: rows, money, blobs, idempotence, updates, zips."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bundles import (
    COMPANY_ID,
    MISSING_PERIOD_ID,
    PROJECT_ID,
    dump_database,
    sample_bundle,
    tiny_pdf,
    write_bundle,
    zip_folder,
)

import commands.apply_snapshot as import_module
from commands.apply_snapshot import KINDS, SnapshotReport
from commands.import_bundle import import_bundle
from sources.bundle import BundleError
from storage.blobs import LocalBlobStore
from storage.models import Attachment, BillingPeriod, Commitment, Invoice, Project, ProjectUser

SAMPLE_COUNTS = {
    "projects": 1,
    "billing_periods": 2,
    "commitments": 2,
    "users": 3,
    "invoices": 3,
    "attachments": 3,
}


@pytest.fixture
def blobs(data_dir: Path) -> LocalBlobStore:
    return LocalBlobStore(data_dir)


def assert_all(report: SnapshotReport, what: str) -> None:
    for kind in KINDS:
        changes = report.changes[kind]
        assert getattr(changes, what) == changes.in_snapshot, (kind, changes)


async def test_import_creates_every_row(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    report = await import_bundle(write_bundle(tmp_path / "bundle"), blobs)

    assert report.counts == SAMPLE_COUNTS
    assert_all(report, "created")
    assert not report.unchanged
    assert report.project_id == PROJECT_ID
    assert "Harbor View Tower (HV-2026)" in report.render()
    assert await Project.all().count() == 1
    assert await BillingPeriod.all().count() == 2
    assert await Commitment.all().count() == 2
    assert await ProjectUser.all().count() == 3
    assert await Invoice.all().count() == 3
    assert await Attachment.all().count() == 3


async def test_rows_hold_what_the_bundle_says(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    await import_bundle(write_bundle(tmp_path / "bundle", data), blobs)

    project = await Project.get(id=PROJECT_ID)
    assert (project.name, project.project_number) == ("Harbor View Tower", "HV-2026")
    assert (project.company_id, project.company_name) == (COMPANY_ID, "Summit GC")
    assert project.invoice_contacts_may_compile is True
    assert project.dictionary == {
        "commitments": "Subcontracts",
        "invoicing": "Invoicing",
        "subcontractor": "Trade Partner",
    }

    open_period = await BillingPeriod.get(id=802)
    assert (open_period.project_id, open_period.position, open_period.status) == (
        PROJECT_ID,
        2,
        "open",
    )
    assert open_period.due_date is None
    assert str((await BillingPeriod.get(id=801)).due_date) == "2026-09-25"

    private = await Commitment.get(id=502)
    assert (private.number, private.private, private.executed) == ("SC-10", True, False)
    assert (private.vendor_id, private.vendor_name) == (72, "Pipe & Co")
    assert private.private_list == [{"id": 9002, "email": "pat@pipe.example"}]
    public = await Commitment.get(id=501)
    assert public.invoice_contacts == [
        {"id": 9001, "name": "Mara Volt", "email": "mara@volt.example"}
    ]

    admin = await ProjectUser.get(project_id=PROJECT_ID, user_id=9000)
    assert admin.email_address == "Dana.Reyes@Summit.example"
    assert admin.email_lower == "dana.reyes@summit.example"
    assert (admin.vendor_id, admin.vendor_name, admin.commitments_access) == (None, None, "admin")
    contact = await ProjectUser.get(project_id=PROJECT_ID, user_id=9002)
    assert (contact.is_active, contact.vendor_id, contact.commitments_access) == (
        False,
        72,
        "standard",
    )

    orphan = await Invoice.get(id=7003)
    assert orphan.period_id == MISSING_PERIOD_ID
    assert (orphan.commitment_id, orphan.number, orphan.status) == (502, 1, "draft")
    assert orphan.items == data.requisition(7003)["items"]
    assert orphan.summary_text == data.requisition(7003)["summary_text"]
    assert str(orphan.billing_date) == "2026-09-30"


async def test_money_round_trips_exactly(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    await import_bundle(write_bundle(tmp_path / "bundle", data), blobs)

    expected = {7001: Decimal("98234.57"), 7002: Decimal("1234567.89"), 7003: Decimal("0.10")}
    for invoice_id, amount in expected.items():
        invoice = await Invoice.get(id=invoice_id)
        assert isinstance(invoice.current_payment_due, Decimal)
        assert invoice.current_payment_due == amount
        assert str(invoice.current_payment_due) == str(amount)
        assert invoice.summary == data.requisition(invoice_id)["summary"]
    assert (await Invoice.get(id=7002)).summary["current_payment_due"] == "1,234,567.89"


async def test_json_numbers_are_kept_exactly(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    folder = write_bundle(tmp_path / "bundle")
    requisitions = (folder / "requisitions.json").read_text()
    (folder / "requisitions.json").write_text(
        requisitions.replace('"current_payment_due": "98,234.57"', '"current_payment_due": 0.30')
    )
    await import_bundle(folder, blobs)

    invoice = await Invoice.get(id=7001)
    assert invoice.current_payment_due == Decimal("0.30")
    assert invoice.summary["current_payment_due"] == "0.30"


async def test_files_go_to_blobs_named_by_sha256_never_to_the_database(
    database: str, tmp_path: Path, data_dir: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    await import_bundle(write_bundle(tmp_path / "bundle", data), blobs)

    for attachment_id, relative in (
        (60001, "files/7001/lien-waiver.pdf"),
        (60002, "files/7002/site-photo.jpg"),
        (60003, "files/7003/timesheets.pdf"),
    ):
        attachment = await Attachment.get(id=attachment_id)
        content = data.files[relative]
        sha256 = hashlib.sha256(content).hexdigest()
        assert attachment.sha256 == sha256
        assert attachment.byte_size == len(content)
        assert attachment.position == 0
        blob = data_dir / "blobs" / sha256[:2] / sha256[2:4] / sha256
        assert blob.read_bytes() == content
    attachment = await Attachment.get(id=60002)
    assert (attachment.filename, attachment.content_type) == ("site photo.jpg", "image/jpeg")

    signed = await Invoice.get(id=7001)
    signed_bytes = data.files["files/7001/signed.pdf"]
    assert signed.signed_pdf_filename == "INV-7001 signed.pdf"
    assert signed.signed_pdf_sha256 == hashlib.sha256(signed_bytes).hexdigest()
    assert blobs.path_for(signed.signed_pdf_sha256).read_bytes() == signed_bytes
    assert (await Invoice.get(id=7002)).signed_pdf_sha256 is None

    stored = [path for path in (data_dir / "blobs").rglob("*") if path.is_file()]
    assert len(stored) == len(data.files)
    dumped = json.dumps(await dump_database(), default=str)
    assert "%PDF" not in dumped and "JFIF" not in dumped


async def test_identical_files_are_stored_once(
    database: str, tmp_path: Path, data_dir: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    data.files["files/7003/timesheets.pdf"] = data.files["files/7001/lien-waiver.pdf"]
    await import_bundle(write_bundle(tmp_path / "bundle", data), blobs)

    first, third = await Attachment.get(id=60001), await Attachment.get(id=60003)
    assert first.sha256 == third.sha256
    stored = [path for path in (data_dir / "blobs").rglob("*") if path.is_file()]
    assert len(stored) == len(data.files) - 1


async def test_importing_the_same_bundle_twice_changes_nothing(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    folder = write_bundle(tmp_path / "bundle")
    await import_bundle(folder, blobs)
    before = await dump_database()

    report = await import_bundle(folder, blobs)

    assert report.unchanged
    assert report.counts == SAMPLE_COUNTS
    assert_all(report, "unchanged")
    assert "Nothing changed" in report.render()
    assert await dump_database() == before


async def test_a_newer_bundle_updates_in_place(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    await import_bundle(write_bundle(tmp_path / "v1"), blobs)
    before = await dump_database()
    admin_row_id = (await ProjectUser.get(project_id=PROJECT_ID, user_id=9000)).id

    data = sample_bundle()
    data.requisition(7002)["status"] = "approved"
    data.requisition(7003)["attachments"] = []
    new_invoice = json.loads(json.dumps(data.requisition(7002)))
    new_invoice.update(id=7004, number=3, invoice_number="INV-7004", status="draft")
    new_invoice["attachments"] = [
        {
            "id": 60004,
            "filename": "Waiver 3.pdf",
            "content_type": "application/pdf",
            "url": "files/7004/waiver.pdf",
        }
    ]
    data.requisitions.append(new_invoice)
    data.files["files/7004/waiver.pdf"] = tiny_pdf("Waiver #3")
    data.users = [user for user in data.users if user["id"] != 9002]
    data.users[0]["email_address"] = "dana@summit.example"

    report = await import_bundle(write_bundle(tmp_path / "v2", data), blobs)

    invoices = report.changes["invoices"]
    assert (invoices.created, invoices.updated, invoices.unchanged) == (1, 1, 2)
    assert invoices.deleted == 0
    attachments = report.changes["attachments"]
    assert (attachments.created, attachments.unchanged, attachments.deleted) == (1, 2, 1)
    users = report.changes["users"]
    assert (users.updated, users.unchanged, users.deleted) == (1, 1, 1)
    assert report.changes["commitments"].unchanged == 2
    assert report.changes["projects"].unchanged == 1

    assert (await Invoice.get(id=7002)).status == "approved"
    assert await Invoice.filter(id=7004).exists()
    assert not await Attachment.filter(id=60003).exists()
    assert not await ProjectUser.filter(user_id=9002).exists()
    admin = await ProjectUser.get(project_id=PROJECT_ID, user_id=9000)
    assert admin.id == admin_row_id
    assert admin.email_lower == "dana@summit.example"

    old_invoices = {row["id"]: row for row in before["Invoice"]}
    now = {invoice.id: invoice for invoice in await Invoice.all()}
    assert now[7001].updated_at == old_invoices[7001]["updated_at"]
    assert now[7002].updated_at > old_invoices[7002]["updated_at"]
    # Blobs are never deleted by an import: the removed attachment's bytes stay.
    removed_sha = next(row["sha256"] for row in before["Attachment"] if row["id"] == 60003)
    assert await blobs.exists(removed_sha)


async def test_records_missing_from_a_newer_bundle_are_deleted(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    await import_bundle(write_bundle(tmp_path / "v1"), blobs)
    data = sample_bundle()
    data.commitments = [entry for entry in data.commitments if entry["id"] != 502]
    data.requisitions = [entry for entry in data.requisitions if entry["id"] != 7003]
    data.billing_periods = [entry for entry in data.billing_periods if entry["id"] != 801]

    report = await import_bundle(write_bundle(tmp_path / "v2", data), blobs)

    assert report.changes["commitments"].deleted == 1
    assert report.changes["invoices"].deleted == 1
    assert report.changes["attachments"].deleted == 1
    assert report.changes["billing_periods"].deleted == 1
    assert await Commitment.filter(project_id=PROJECT_ID).values_list("id", flat=True) == [501]
    assert sorted(await Invoice.all().values_list("id", flat=True)) == [7001, 7002]
    assert await BillingPeriod.all().values_list("id", flat=True) == [802]


async def test_an_invoice_may_move_to_another_commitment(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    await import_bundle(write_bundle(tmp_path / "v1"), blobs)
    data = sample_bundle()
    data.requisition(7003)["commitment_id"] = 501
    data.commitments = [entry for entry in data.commitments if entry["id"] != 502]

    report = await import_bundle(write_bundle(tmp_path / "v2", data), blobs)

    assert report.changes["invoices"].updated == 1
    assert report.changes["attachments"].unchanged == 3
    assert (await Invoice.get(id=7003)).commitment_id == 501
    assert not await Commitment.filter(id=502).exists()


async def test_settings_absent_from_the_bundle_keep_what_admins_chose(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    data = sample_bundle()
    del data.project["settings"]
    folder = write_bundle(tmp_path / "bundle", data)
    await import_bundle(folder, blobs)
    project = await Project.get(id=PROJECT_ID)
    assert project.invoice_contacts_may_compile is False
    assert project.dictionary["commitments"] == "Commitments"

    project.invoice_contacts_may_compile = True
    await project.save()
    report = await import_bundle(folder, blobs)

    assert report.unchanged
    assert (await Project.get(id=PROJECT_ID)).invoice_contacts_may_compile is True


@pytest.mark.parametrize("inside", [None, "Harbor View export"])
async def test_a_zip_imports_like_its_folder(
    database: str, tmp_path: Path, blobs: LocalBlobStore, inside: str | None
) -> None:
    folder = write_bundle(tmp_path / "bundle")
    archive = zip_folder(folder, tmp_path / "bundle.zip", inside=inside)

    from_zip = await import_bundle(archive, blobs)
    dumped = await dump_database()
    from_folder = await import_bundle(folder, blobs)

    assert from_zip.counts == SAMPLE_COUNTS
    assert_all(from_zip, "created")
    assert from_folder.unchanged
    assert await dump_database() == dumped


async def test_a_zip_made_on_a_mac_imports(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    import zipfile

    folder = write_bundle(tmp_path / "bundle")
    archive = zip_folder(folder, tmp_path / "bundle.zip", inside="export")
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr("__MACOSX/export/._project.json", b"\x00\x05\x16\x07")

    report = await import_bundle(archive, blobs)
    assert report.counts == SAMPLE_COUNTS


async def test_a_failure_while_writing_rolls_everything_back(
    database: str, tmp_path: Path, blobs: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await import_bundle(write_bundle(tmp_path / "v1"), blobs)
    before = await dump_database()
    data = sample_bundle()
    data.requisition(7001)["status"] = "revise_and_resubmit"
    data.requisitions = data.requisitions[:2]
    data.billing_periods = data.billing_periods[1:]
    original_delete = import_module._delete_absent

    async def fail_at_the_last_step(model: Any, *args: Any) -> None:
        if model is BillingPeriod:
            raise RuntimeError("disk full")
        await original_delete(model, *args)

    monkeypatch.setattr(import_module, "_delete_absent", fail_at_the_last_step)
    with pytest.raises(RuntimeError, match="disk full"):
        await import_bundle(write_bundle(tmp_path / "v2", data), blobs)

    assert await dump_database() == before


async def test_ids_of_another_project_are_refused(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    await import_bundle(write_bundle(tmp_path / "first"), blobs)
    before = await dump_database()
    data = sample_bundle()
    data.project.update(id=42, name="Other", project_number="OT-1")

    with pytest.raises(BundleError) as refused:
        await import_bundle(write_bundle(tmp_path / "other", data), blobs)

    assert "requisitions.json[0].id: 7001 already belongs to project" in str(refused.value)
    assert "commitments.json[1].id: 502 already belongs to project" in str(refused.value)
    assert await dump_database() == before


async def test_a_zip_made_on_windows_with_backslashes_imports(
    database: str, tmp_path: Path, blobs: LocalBlobStore
) -> None:
    import zipfile

    data = sample_bundle()
    data.requisition(7002)["attachments"][0]["url"] = "files\\7002\\site-photo.jpg"
    folder = write_bundle(tmp_path / "bundle", data)
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zipped.writestr(str(path.relative_to(folder)).replace("/", "\\"), path.read_bytes())

    report = await import_bundle(archive, blobs)

    assert report.counts == SAMPLE_COUNTS
    photo = await Attachment.get(id=60002)
    assert photo.sha256 == hashlib.sha256(data.files["files/7002/site-photo.jpg"]).hexdigest()
