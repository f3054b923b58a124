"""A realistic demo bundle, made from nothing, so the product can be tried without Procore or Slack.

One project, four billing periods, three commitments (SC-002 private), five users, eight
invoices (SC-010 application #3 points to billing period 599, which does not exist; SC-002
application #2 is DocuSign-signed) and attachments covering every case the compiler handles:
lien waivers and timesheets, an image-heavy scan, a PDF with an empty user password, a
password-protected PDF, a truncated PDF that can be repaired, a damaged PDF and a photo (JPEG).

Every invoice's numbers tie out (`commands.tie_out`: retainage is 10% of completed work and 5% of
stored material, on the G702 and in each G703 row alike) except one, on purpose, so the demo
shows the check: SC-001 application #3 has two digits of its current payment due swapped.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from PIL import Image
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from sources.bundle_writer import BundleData, write_bundle_folder

PROJECT_ID = 1001
ADMIN_EMAIL = "pm@example.com"
CENT = Decimal("0.01")
WORK_RETAINAGE = Decimal("0.10")
STORED_RETAINAGE = Decimal("0.05")
MISTYPED_INVOICE = 9003  # its current payment due has two digits swapped: it does not tie out


@dataclass(frozen=True)
class _Contract:
    id: int
    number: str
    title: str
    vendor_id: int
    vendor_name: str
    private: bool
    lines: tuple[tuple[str, Decimal], ...]
    street: str
    city: str


CONTRACTS = (
    _Contract(
        301,
        "SC-001",
        "Concrete & Foundations",
        71,
        "Acme Concrete",
        False,
        (
            ("Mobilization and site layout", Decimal("18500")),
            ("Footings and grade beams, incl. rebar & formwork", Decimal("142000")),
            ("Slab on grade, 6in reinforced", Decimal("96500")),
            ("Elevated deck, level 2 post-tensioned", Decimal("188000")),
            ("Testing and inspection allowance", Decimal("12000")),
        ),
        "44 Quarry Road",
        "Springfield",
    ),
    _Contract(
        302,
        "SC-002",
        "Electrical",
        72,
        "Volt Electric Co.",
        True,
        (
            ("Temporary power", Decimal("9500")),
            ("Service entrance and switchgear", Decimal("84000")),
            ("Branch wiring, floors 1-3", Decimal("121000")),
            ("Lighting fixtures and controls", Decimal("66500")),
        ),
        "9 Ampere Way",
        "Shelbyville",
    ),
    _Contract(
        303,
        "SC-010",
        "Mechanical / HVAC",
        73,
        "Polar Air Mechanical",
        False,
        (
            ("Rooftop units (3), supply and set", Decimal("156000")),
            ("Ductwork, floors 1-3", Decimal("88000")),
            ("Controls and balancing", Decimal("27500")),
        ),
        "1200 Frost Ave",
        "Capital City",
    ),
)

PERIODS = (
    (501, 1, date(2026, 8, 1), date(2026, 8, 31), "closed"),
    (502, 2, date(2026, 9, 1), date(2026, 9, 30), "closed"),
    (503, 3, date(2026, 10, 1), date(2026, 10, 31), "closed"),
    (504, 4, date(2026, 11, 1), date(2026, 11, 30), "open"),
)
MISSING_PERIOD_ID = 599

# (requisition id, contract id, application number, period id, status, signed)
REQUISITIONS = (
    (9001, 301, 1, 501, "approved", False),
    (9002, 301, 2, 502, "approved", False),
    (9003, 301, 3, 503, "approved_as_noted", False),
    (9011, 302, 1, 502, "approved", False),
    (9012, 302, 2, 503, "approved", True),
    (9021, 303, 1, 503, "pending_owner_approval", False),
    (9022, 303, 2, 504, "under_review", False),
    (9023, 303, 3, MISSING_PERIOD_ID, "under_review", False),
)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _money(amount: Decimal) -> str:
    return f"{_cents(amount):,.2f}"


def _transposed(amount: Decimal) -> Decimal:
    """`amount` with the first two different neighbouring digits of its dollars (after the
    leading one) swapped: ``65700`` → ``67500``."""
    dollars = str(int(amount))
    for index in [*range(1, len(dollars) - 1), 0]:
        if dollars[index] != dollars[index + 1]:
            swapped = dollars[:index] + dollars[index + 1] + dollars[index] + dollars[index + 2 :]
            return Decimal(swapped) + (amount - int(amount))
    return amount


def _text_pdf(title: str, lines: list[str], pages: int = 1) -> bytes:
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    for page in range(1, pages + 1):
        canvas.setFont("Helvetica-Bold", 16)
        canvas.drawString(72, 720, title)
        canvas.setFont("Helvetica", 11)
        y = 690
        for line in lines:
            canvas.drawString(72, y, line)
            y -= 16
        if pages > 1:
            canvas.drawString(72, 60, f"Sheet {page} of {pages}")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _scan_pdf(title: str, pages: int, seed: int) -> bytes:
    """An image-heavy 'scan': noisy grey images that do not compress away."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=LETTER)
    for page in range(pages):
        noise = rng.randbytes(900 * 1100)
        image = Image.frombytes("L", (900, 1100), noise)
        encoded = io.BytesIO()
        image.save(encoded, format="JPEG", quality=70)
        canvas.drawImage(ImageReader(io.BytesIO(encoded.getvalue())), 36, 36, 540, 720)
        canvas.setFont("Helvetica-Bold", 14)
        canvas.drawString(48, 760, f"{title} (scan page {page + 1})")
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _encrypted(data: bytes, user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _photo_jpeg(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 240), (rng.randrange(256), 120, 60))
    encoded = io.BytesIO()
    image.save(encoded, format="JPEG", quality=80)
    return encoded.getvalue()


def _lien_waiver(contract: _Contract, application: int, amount: Decimal) -> bytes:
    return _text_pdf(
        "Conditional Waiver and Release on Progress Payment",
        [
            f"Claimant: {contract.vendor_name}",
            f"Contract: {contract.number} {contract.title}",
            f"Application #{application}",
            f"Amount of payment: ${_money(amount)}",
            "This document waives and releases lien, stop payment notice and payment bond",
            "rights the claimant has for labor and service provided through the period.",
        ],
    )


def _timesheet(contract: _Contract, application: int) -> bytes:
    rows = [f"Crew {n}: 5 workers x 40 h - week {n} of application {application}" for n in (1, 2)]
    return _text_pdf(f"Certified payroll / timesheet - {contract.vendor_name}", rows, pages=2)


def _attachments(
    contract: _Contract, application: int, amount: Decimal
) -> list[tuple[str, str, bytes]]:
    """(filename, content type, bytes) for one requisition."""
    waiver = ("lien-waiver.pdf", "application/pdf", _lien_waiver(contract, application, amount))
    key = (contract.number, application)
    extra: dict[tuple[str, int], list[tuple[str, str, bytes]]] = {
        ("SC-001", 1): [("timesheet.pdf", "application/pdf", _timesheet(contract, 1))],
        ("SC-001", 2): [
            (
                "delivery-tickets-scan.pdf",
                "application/pdf",
                _scan_pdf("Ready-mix delivery tickets", 3, seed=7),
            )
        ],
        ("SC-001", 3): [("site-photo.jpg", "image/jpeg", _photo_jpeg(3))],
        ("SC-002", 1): [
            (
                "payroll-locked.pdf",
                "application/pdf",
                _encrypted(_timesheet(contract, 1), user_password="volt2026"),
            )
        ],
        ("SC-002", 2): [
            ("timesheet.pdf", "application/pdf", _timesheet(contract, 2)),
            ("damaged-invoice-copy.pdf", "application/pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8),
        ],
        ("SC-010", 1): [
            (
                "equipment-receipt.pdf",
                "application/pdf",
                _encrypted(_text_pdf("Equipment rental receipt", ["Crane, 2 days"]), ""),
            ),
            (
                "startup-report-truncated.pdf",
                "application/pdf",
                _text_pdf("RTU start-up report", ["Unit 1 OK", "Unit 2 OK"])[:-40],
            ),
        ],
    }
    return [waiver, *extra.get(key, [])]


def _progress(contract: _Contract, application: int) -> list[Decimal]:
    """Fraction of each line completed after `application` applications."""
    shares = [Decimal("0.20"), Decimal("0.45"), Decimal("0.70")]
    done = shares[min(application, len(shares)) - 1]
    return [done if index % 2 == 0 else done / 2 for index in range(len(contract.lines))]


def _requisition(
    requisition_id: int,
    contract: _Contract,
    application: int,
    period_id: int,
    status: str,
    files: list[dict[str, Any]],
    signed_pdf: dict[str, str] | None,
) -> dict[str, Any]:
    before = _progress(contract, application - 1) if application > 1 else None
    now = _progress(contract, application)
    items: list[dict[str, Any]] = []
    totals = {"scheduled": Decimal(0), "previous": Decimal(0), "this": Decimal(0)}
    stored_total = Decimal("0")
    for index, ((description, scheduled), fraction) in enumerate(
        zip(contract.lines, now, strict=True)
    ):
        previous = (scheduled * before[index]).quantize(CENT) if before else Decimal(0)
        this_period = (scheduled * fraction).quantize(CENT) - previous
        stored = Decimal("2500.00") if index == 1 and application == 1 else Decimal(0)
        completed = previous + this_period + stored
        retainage = _cents((previous + this_period) * WORK_RETAINAGE) + _cents(
            stored * STORED_RETAINAGE
        )
        items.append(
            {
                "id": requisition_id * 100 + index,
                "position": index + 1,
                "description_of_work": description,
                "scheduled_value": _money(scheduled),
                "work_completed_from_previous_application": _money(previous),
                "work_completed_this_period": _money(this_period),
                "materials_presently_stored": _money(stored),
                "total_completed_and_stored_to_date": _money(completed),
                "balance_to_finish": _money(scheduled - completed),
                "total_retainage": _money(retainage),
            }
        )
        totals["scheduled"] += scheduled
        totals["previous"] += previous
        totals["this"] += this_period
        stored_total += stored
    change_orders = Decimal("12500.00") if contract.number == "SC-001" else Decimal(0)
    contract_sum = totals["scheduled"] + change_orders
    work = totals["previous"] + totals["this"]
    completed_to_date = work + stored_total
    work_retainage = _cents(work * WORK_RETAINAGE)
    stored_retainage = _cents(stored_total * STORED_RETAINAGE)
    retainage = work_retainage + stored_retainage
    earned = completed_to_date - retainage
    previous_certificates = _cents(totals["previous"] * (1 - WORK_RETAINAGE))
    payment_due = earned - previous_certificates
    if requisition_id == MISTYPED_INVOICE:
        payment_due = _transposed(payment_due)
    period = next((p for p in PERIODS if p[0] == period_id), None)
    start, end = (period[2], period[3]) if period else (date(2026, 11, 1), date(2026, 11, 30))
    summary = {
        "original_contract_sum": _money(totals["scheduled"]),
        "net_change_by_change_orders": _money(change_orders),
        "contract_sum_to_date": _money(contract_sum),
        "total_completed_and_stored_to_date": _money(completed_to_date),
        "completed_work_retainage_percent": f"{WORK_RETAINAGE * 100:.1f}",
        "completed_work_retainage_amount": _money(work_retainage),
        "stored_materials_retainage_percent": f"{STORED_RETAINAGE * 100:.1f}",
        "stored_materials_retainage_amount": _money(stored_retainage),
        "total_retainage": _money(retainage),
        "total_earned_less_retainage": _money(earned),
        "less_previous_certificates_for_payment": _money(previous_certificates),
        "current_payment_due": _money(payment_due),
        "balance_to_finish_including_retainage": _money(contract_sum - earned),
        "positive_previous_change_order_item_total": _money(change_orders),
        "negative_previous_change_order_item_total": "0.00",
        "positive_new_change_order_item_total": "0.00",
        "negative_new_change_order_item_total": "0.00",
    }
    summary_text = {
        "to_general_contractor": "Northwind Builders, Inc.",
        "project_name": "Riverside Medical Office Building",
        "project_number": "2026-014",
        "application_number": str(application),
        "requisition_period_start": start.isoformat(),
        "requisition_period_end": end.isoformat(),
        "subcontractor_name": contract.vendor_name,
        "subcontractor_street": contract.street,
        "subcontractor_city": contract.city,
        "subcontractor_state_code": "IL",
        "subcontractor_zip": "62701",
        "subcontractor_country_code": "US",
        "contract_for": contract.title,
        "contract_date": "2026-06-15",
    }
    return {
        "id": requisition_id,
        "number": application,
        "invoice_number": f"{contract.number}-{application:03d}",
        "commitment_id": contract.id,
        "period_id": period_id,
        "requisition_start": start.isoformat(),
        "requisition_end": end.isoformat(),
        "billing_date": end.isoformat(),
        "status": status,
        "summary": summary,
        "summary_text": summary_text,
        "items": items,
        "attachments": files,
        "signed_pdf": signed_pdf,
    }


def _signed_copy(requisition: dict[str, Any]) -> bytes:
    """The generated invoice with a DocuSign certificate page, as DocuSign would return it."""
    from commands.invoice_sheets import build_invoice_sheet
    from pdf.render_invoice import render_invoice

    sheet = build_invoice_sheet(
        application_number=requisition["number"],
        invoice_number=requisition["invoice_number"],
        status_label="Approved",
        billing_date=date.fromisoformat(requisition["billing_date"]),
        summary=requisition["summary"],
        summary_text=requisition["summary_text"],
        items=requisition["items"],
    )
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(render_invoice(sheet))))
    certificate = _text_pdf(
        "DocuSign Certificate of Completion",
        [
            "Envelope Id: 7C1E2A9B-0F3D-4C55-9A1E-52B0D3C4E6F1",
            "Status: Completed",
            "Signer: Mara Volt, Volt Electric Co. - signed 2026-11-03",
            "Approver: Dana Reyes, Northwind Builders - signed 2026-11-04",
        ],
    )
    writer.append(PdfReader(io.BytesIO(certificate)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def write_demo_bundle(folder: Path) -> Path:
    """Write the demo bundle (JSON files and `files/`) into `folder` and return it."""
    contracts = {contract.id: contract for contract in CONTRACTS}
    files: dict[str, bytes] = {}
    requisitions: list[dict[str, Any]] = []
    attachment_id = 70000
    for requisition_id, contract_id, application, period_id, status, signed in REQUISITIONS:
        contract = contracts[contract_id]
        entries: list[dict[str, Any]] = []
        for filename, content_type, data in _attachments(contract, application, Decimal(0)):
            attachment_id += 1
            relative = f"files/{requisition_id}/{filename}"
            files[relative] = data
            entries.append(
                {
                    "id": attachment_id,
                    "filename": filename,
                    "content_type": content_type,
                    "url": relative,
                }
            )
        requisition = _requisition(
            requisition_id, contract, application, period_id, status, entries, None
        )
        if signed:
            relative = f"files/{requisition_id}/signed-{requisition['invoice_number']}.pdf"
            files[relative] = _signed_copy(requisition)
            requisition["signed_pdf"] = {"filename": Path(relative).name, "url": relative}
        requisitions.append(requisition)
    for requisition in requisitions:
        waiver = requisition["attachments"][0]
        contract = contracts[requisition["commitment_id"]]
        due = Decimal(requisition["summary"]["current_payment_due"].replace(",", ""))
        files[waiver["url"]] = _lien_waiver(contract, requisition["number"], due)

    (folder / "files").mkdir(parents=True, exist_ok=True)
    return write_bundle_folder(
        folder,
        BundleData(
            project={
                "id": PROJECT_ID,
                "name": "Riverside Medical Office Building",
                "project_number": "2026-014",
                "company": {"id": 11, "name": "Northwind Builders, Inc."},
                "settings": {
                    "invoice_contacts_may_compile": False,
                    "dictionary": {
                        "commitments": "Commitments",
                        "invoicing": "Invoicing",
                        "subcontractor": "Subcontractor",
                    },
                },
            },
            billing_periods=[
                {
                    "id": period_id,
                    "position": position,
                    "start_date": start.isoformat(),
                    "end_date": end.isoformat(),
                    "due_date": end.isoformat(),
                    "status": status,
                }
                for period_id, position, start, end, status in PERIODS
            ],
            commitments=[_commitment(c) for c in CONTRACTS],
            users=USERS,
            requisitions=requisitions,
            files=files,
        ),
    )


USERS: list[dict[str, Any]] = [
    {
        "id": 1,
        "name": "Dana Reyes",
        "email_address": ADMIN_EMAIL,
        "is_active": True,
        "vendor": None,
        "commitments_access": "admin",
    },
    {
        "id": 2,
        "name": "Sam Okafor",
        "email_address": "super@example.com",
        "is_active": True,
        "vendor": None,
        "commitments_access": "standard",
    },
    {
        "id": 3,
        "name": "Lee Park",
        "email_address": "viewer@example.com",
        "is_active": True,
        "vendor": None,
        "commitments_access": "read_only",
    },
    {
        "id": 4,
        "name": "Ana Stone",
        "email_address": "ana@acmeconcrete.example",
        "is_active": True,
        "vendor": {"id": 71, "name": "Acme Concrete"},
        "commitments_access": "none",
    },
    {
        "id": 5,
        "name": "Mara Volt",
        "email_address": "mara@voltelectric.example",
        "is_active": True,
        "vendor": {"id": 72, "name": "Volt Electric Co."},
        "commitments_access": "none",
    },
]


def _commitment(contract: _Contract) -> dict[str, Any]:
    contacts = {
        301: [{"id": 4, "name": "Ana Stone", "email": "ana@acmeconcrete.example"}],
        302: [{"id": 5, "name": "Mara Volt", "email": "mara@voltelectric.example"}],
        303: [],
    }[contract.id]
    return {
        "id": contract.id,
        "number": contract.number,
        "title": contract.title,
        "status": "Approved",
        "executed": True,
        "private": contract.private,
        "vendor": {"id": contract.vendor_id, "name": contract.vendor_name},
        "invoice_contacts": contacts,
        "private_list": [{"id": 5, "email": "mara@voltelectric.example"}]
        if contract.private
        else [],
    }
