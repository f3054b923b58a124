"""Test bundles: a small, realistic project bundle as plain JSON that tests mutate, then write.

`sample_bundle()` returns fresh data each call; change any of its dicts, then `write_bundle`.
It holds 2 commitments (SC-10 private), 2 billing periods, 3 users and 3 invoices with line
items and one attachment each; invoice 7003 points to billing period 899, which does not exist;
invoice 7001 has a signed PDF. Ids are Procore-sized (above 2**31) where Procore's are.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from tortoise.models import Model

from sources.bundle_writer import BundleData, write_bundle_folder
from storage.models import (
    Attachment,
    Backup,
    BillingPeriod,
    Commitment,
    Invoice,
    Project,
    ProjectUser,
)

PROJECT_ID = 562949953421312
COMPANY_ID = 562949953400001
OPEN_PERIOD_ID = 802
MISSING_PERIOD_ID = 899
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def tiny_pdf(text: str) -> bytes:
    """A valid one-page PDF showing ``text`` (ASCII), written by hand with a correct xref."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    output = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(output))
        output += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_offset = len(output)
    output += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        output += b"%010d 00000 n \n" % offset
    output += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    output += b"startxref\n%d\n%%%%EOF\n" % xref_offset
    return bytes(output)


def _summary(current_payment_due: str) -> dict[str, str]:
    return {
        "original_contract_sum": "1,250,000.00",
        "net_change_by_change_orders": "-12,500.50",
        "contract_sum_to_date": "1,237,499.50",
        "total_completed_and_stored_to_date": "310,000.00",
        "completed_work_retainage_percent": "10.0",
        "completed_work_retainage_amount": "31,000.00",
        "stored_materials_retainage_percent": "5.0",
        "stored_materials_retainage_amount": "0.00",
        "total_retainage": "31,000.00",
        "total_earned_less_retainage": "279,000.00",
        "less_previous_certificates_for_payment": "180,765.43",
        "current_payment_due": current_payment_due,
        "balance_to_finish_including_retainage": "958,499.50",
    }


def _items(requisition_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": requisition_id * 10 + 1,
            "position": 1,
            "description_of_work": "Rough-in, levels 1-3",
            "scheduled_value": "800,000.00",
            "work_completed_from_previous_application": "150,000.00",
            "work_completed_this_period": "110,000.00",
            "materials_presently_stored": "0.00",
            "total_completed_and_stored_to_date": "260,000.00",
            "total_completed_and_stored_to_date_percent": "32.5",
            "balance_to_finish": "540,000.00",
            "total_retainage": "26,000.00",
        },
        {
            "id": requisition_id * 10 + 2,
            "position": 2,
            "description_of_work": "Switchgear (stored on site)",
            "scheduled_value": "450,000.00",
            "work_completed_from_previous_application": "0.00",
            "work_completed_this_period": "0.00",
            "materials_presently_stored": "50,000.00",
            "total_completed_and_stored_to_date": "50,000.00",
            "total_completed_and_stored_to_date_percent": "11.11",
            "balance_to_finish": "400,000.00",
            "total_retainage": "5,000.00",
        },
    ]


def _requisition(
    requisition_id: int,
    commitment_id: int,
    number: int,
    period_id: int,
    status: str,
    current_payment_due: str,
    attachment: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": requisition_id,
        "number": number,
        "invoice_number": f"INV-{requisition_id}",
        "commitment_id": commitment_id,
        "period_id": period_id,
        "requisition_start": "2026-09-01",
        "requisition_end": "2026-09-30",
        "billing_date": "2026-09-30",
        "status": status,
        "summary": _summary(current_payment_due),
        "summary_text": {
            "to_general_contractor": "Summit GC",
            "project_name": "Harbor View Tower",
            "project_number": "HV-2026",
            "application_number": str(number),
            "subcontractor_name": "Volt Electric",
            "contract_for": "Electrical",
            "contract_date": "2026-05-01",
        },
        "items": _items(requisition_id),
        "attachments": [attachment],
        "signed_pdf": None,
    }


def sample_bundle() -> BundleData:
    """Fresh data of the sample bundle (see module docstring)."""
    requisitions = [
        _requisition(
            7001,
            501,
            1,
            801,
            "approved",
            "98,234.57",
            {
                "id": 60001,
                "filename": "Lien waiver.pdf",
                "content_type": "application/pdf",
                "url": "files/7001/lien-waiver.pdf",
            },
        ),
        _requisition(
            7002,
            501,
            2,
            OPEN_PERIOD_ID,
            "under_review",
            "1,234,567.89",
            {
                "id": 60002,
                "filename": "site photo.jpg",
                "content_type": "image/jpeg",
                "url": "files/7002/site-photo.jpg",
            },
        ),
        _requisition(
            7003,
            502,
            1,
            MISSING_PERIOD_ID,
            "draft",
            "0.10",
            {
                "id": 60003,
                "filename": "Timesheets.pdf",
                "content_type": "application/pdf",
                "url": "files/7003/timesheets.pdf",
            },
        ),
    ]
    requisitions[0]["signed_pdf"] = {
        "filename": "INV-7001 signed.pdf",
        "url": "files/7001/signed.pdf",
    }
    return BundleData(
        project={
            "id": PROJECT_ID,
            "name": "Harbor View Tower",
            "project_number": "HV-2026",
            "company": {"id": COMPANY_ID, "name": "Summit GC"},
            "settings": {
                "invoice_contacts_may_compile": True,
                "dictionary": {"commitments": "Subcontracts", "subcontractor": "Trade Partner"},
            },
        },
        billing_periods=[
            {
                "id": 801,
                "position": 1,
                "start_date": "2026-09-01",
                "end_date": "2026-09-30",
                "due_date": "2026-09-25",
                "status": "closed",
            },
            {
                "id": OPEN_PERIOD_ID,
                "position": 2,
                "start_date": "2026-10-01",
                "end_date": "2026-10-31",
                "due_date": None,
                "status": "open",
            },
        ],
        commitments=[
            {
                "id": 501,
                "number": "SC-2",
                "title": "Electrical",
                "status": "Approved",
                "executed": True,
                "private": False,
                "vendor": {"id": 71, "name": "Volt Electric"},
                "invoice_contacts": [
                    {"id": 9001, "name": "Mara Volt", "email": "mara@volt.example"}
                ],
                "private_list": [],
            },
            {
                "id": 502,
                "number": "SC-10",
                "title": "Plumbing",
                "status": "Approved",
                "executed": False,
                "private": True,
                "vendor": {"id": 72, "name": "Pipe & Co"},
                "invoice_contacts": [],
                "private_list": [{"id": 9002, "email": "pat@pipe.example"}],
            },
        ],
        users=[
            {
                "id": 9000,
                "name": "Dana Reyes",
                "email_address": "Dana.Reyes@Summit.example",
                "is_active": True,
                "vendor": None,
                "commitments_access": "admin",
            },
            {
                "id": 9001,
                "name": "Mara Volt",
                "email_address": "mara@volt.example",
                "is_active": True,
                "vendor": {"id": 71, "name": "Volt Electric"},
                "commitments_access": "read_only",
            },
            {
                "id": 9002,
                "name": "Pat Pipe",
                "email_address": "pat@pipe.example",
                "is_active": False,
                "vendor": {"id": 72, "name": "Pipe & Co"},
                "commitments_access": "standard",
            },
        ],
        requisitions=requisitions,
        files={
            "files/7001/lien-waiver.pdf": tiny_pdf("Lien waiver SC-2 #1"),
            "files/7001/signed.pdf": tiny_pdf("INV-7001 signed by DocuSign"),
            "files/7002/site-photo.jpg": JPEG_BYTES,
            "files/7003/timesheets.pdf": tiny_pdf("Timesheets SC-10 #1"),
        },
    )


def write_bundle(folder: Path, data: BundleData | None = None) -> Path:
    """Write ``data`` (default: `sample_bundle()`) as a bundle folder and return the folder."""
    return write_bundle_folder(folder, data if data is not None else sample_bundle())


def zip_folder(folder: Path, archive: Path, *, inside: str | None = None) -> Path:
    """Zip ``folder`` into ``archive``: files at the top level, or under ``inside/``."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                zipped.write(path, f"{inside}/{name}" if inside else name)
    return archive


DUMPED_MODELS: tuple[type[Model], ...] = (
    Project,
    BillingPeriod,
    Commitment,
    ProjectUser,
    Invoice,
    Attachment,
    Backup,
)


async def dump_database() -> dict[str, list[dict[str, Any]]]:
    """Every row of every model, as dicts, in id order: compare two dumps for 'nothing changed'."""
    return {model.__name__: await model.all().order_by("id").values() for model in DUMPED_MODELS}
