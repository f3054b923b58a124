"""A small project as a `ProjectSnapshot` built in Python, for the writer's tests.

`base_snapshot()` holds 2 billing periods (802 open), a public commitment 501 and a private one
502 (private list: Pat), 3 users (Dana admin, Sam standard, Pat read-only), invoice 7001 on 501
(attachments 60001, 60002, with detail) and 7002 on 502 (attachment 60003). File hashes are
made up (the writer never reads files) unless a test stores real bytes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from commands.access import Requester
from sources.snapshot import (
    AttachmentRecord,
    BillingPeriodRecord,
    CommitmentRecord,
    FileRecord,
    InvoiceRecord,
    ProjectRecord,
    ProjectSnapshot,
    UserRecord,
)

PROJECT_ID = 562949953421999
OTHER_PROJECT_ID = 562949953422000
ADMIN = Requester(key="test:dana", email="dana@gc.example", display_name="Dana")
STANDARD = Requester(key="test:sam", email="sam@gc.example", display_name="Sam")
LISTED = Requester(key="test:pat", email="pat@gc.example", display_name="Pat")


def file(name: str, sha: str | None = None, size: int | None = 100) -> FileRecord:
    """A file already in the blob store (``sha`` given) or not downloaded (None)."""
    return FileRecord(filename=name, sha256=sha, byte_size=size if sha else None)


def attachment(attachment_id: int, position: int, name: str, sha: str | None) -> AttachmentRecord:
    return AttachmentRecord(
        id=attachment_id,
        position=position,
        content_type="application/pdf",
        file=file(name, sha),
        where=f"attachment {attachment_id}",
    )


def invoice(invoice_id: int, commitment_id: int, *attachments: AttachmentRecord) -> InvoiceRecord:
    return InvoiceRecord(
        id=invoice_id,
        number=1,
        invoice_number=f"INV-{invoice_id}",
        commitment_id=commitment_id,
        period_id=802,
        requisition_start=date(2026, 3, 1),
        requisition_end=date(2026, 3, 31),
        billing_date=date(2026, 3, 31),
        status="approved",
        summary={"current_payment_due": "1,000.00"},
        current_payment_due=Decimal("1000.00"),
        attachments=attachments,
        summary_text={"contractor": "Acme"},
        items=[{"item_number": "1", "scheduled_value": "1000.00"}],
        where=f"requisition {invoice_id}",
    )


def base_snapshot(**changes: Any) -> ProjectSnapshot:
    """The whole sample project (complete); ``changes`` replace snapshot fields."""
    snapshot = ProjectSnapshot(
        project=ProjectRecord(
            id=PROJECT_ID,
            name="Quay Street Lofts",
            project_number="QS-1",
            company_id=562949953400001,
            company_name="Builder Co",
            invoice_contacts_may_compile=True,
            dictionary={
                "commitments": "Subcontracts",
                "invoicing": "Invoicing",
                "subcontractor": "Subcontractor",
            },
        ),
        billing_periods=(
            BillingPeriodRecord(801, 1, date(2026, 2, 1), date(2026, 2, 28), None, "closed"),
            BillingPeriodRecord(802, 2, date(2026, 3, 1), date(2026, 3, 31), None, "open"),
        ),
        commitments=(
            commitment(501, private=False),
            commitment(502, private=True, private_list=[{"id": 9003, "email": "pat@gc.example"}]),
        ),
        users=(
            user(9001, "Dana", "dana@gc.example", "admin"),
            user(9002, "Sam", "sam@gc.example", "standard"),
            user(9003, "Pat", "pat@gc.example", "read_only"),
        ),
        invoices=(
            invoice(
                7001,
                501,
                attachment(60001, 0, "a.pdf", "a" * 64),
                attachment(60002, 1, "b.pdf", "b" * 64),
            ),
            invoice(7002, 502, attachment(60003, 0, "c.pdf", "c" * 64)),
        ),
    )
    return replace(snapshot, **changes)


def partial_snapshot(**changes: Any) -> ProjectSnapshot:
    """A partial snapshot of the sample project holding nothing but ``changes`` (for example
    ``invoices=(...)`` or ``deleted=...``)."""
    empty: dict[str, Any] = {"billing_periods": (), "commitments": (), "users": (), "invoices": ()}
    return base_snapshot(complete=False, **{**empty, **changes})


def commitment(
    commitment_id: int, *, private: bool, private_list: list[dict[str, Any]] | None = None
) -> CommitmentRecord:
    return CommitmentRecord(
        id=commitment_id,
        number=f"SC-{commitment_id}",
        title="Work",
        status="approved",
        executed=True,
        private=private,
        vendor_id=None,
        vendor_name=f"Vendor {commitment_id}",
        invoice_contacts=[],
        private_list=list(private_list or []),
        where=f"commitment {commitment_id}",
    )


def user(user_id: int, name: str, email: str, level: str, known: bool = True) -> UserRecord:
    return UserRecord(
        user_id=user_id,
        name=name,
        email_address=email,
        is_active=True,
        vendor_id=None,
        vendor_name=None,
        commitments_access=level,
        access_known=known,
        where=f"user {user_id}",
    )


def with_invoice(snapshot: ProjectSnapshot, invoice_id: int, **changes: Any) -> ProjectSnapshot:
    """``snapshot`` with fields of invoice ``invoice_id`` replaced."""
    return replace(
        snapshot,
        invoices=tuple(
            replace(record, **changes) if record.id == invoice_id else record
            for record in snapshot.invoices
        ),
    )
