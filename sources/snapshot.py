"""One project's data as a source gives it: the plain-data snapshot one writer applies.

Two sources produce it: the bundle reader (`sources.bundle`, offline) and the Procore source
(`sources.procore`, live). `commands.apply_snapshot` writes it to the database in one
transaction, upserting by Procore id; a row is written only when a value differs, so applying
the same snapshot twice changes nothing.

Contract:
- Ids are Procore ids (64-bit integers). Money inside ``summary``/``summary_text``/``items``
  stays as the strings the source sent; ``current_payment_due`` is a `Decimal`.
- ``complete=True``: the snapshot holds the whole project, and the writer deletes the project's
  rows it lacks. ``complete=False`` (an incremental sync, a webhook re-read): it holds only what
  the source read; the writer upserts and deletes nothing but the ids named in ``deleted``.
- ``None`` where a field allows it means "this source did not read it; keep what is stored":
  ``InvoiceRecord.items``/``summary_text`` (Procore reads an invoice's detail lazily), a file's
  ``sha256`` (Procore files are downloaded at compile time), a project setting.
- Fail closed: ``CommitmentRecord.private_list`` is None when the source could not read the
  list (then nobody but the app's owners sees that contract); ``UserRecord.access_known`` is
  False when the Commitments level could not be determined (the level is then ``"none"``).
- ``where`` names the record for messages (``requisitions.json[3]``, ``requisition 9001``).
- Nothing here touches the database, Slack or the network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

SOURCE_BUNDLE = "bundle"
SOURCE_PROCORE = "procore"


@dataclass(frozen=True)
class ProjectRecord:
    """The project; a setting is None when the source does not give it."""

    id: int
    name: str
    project_number: str
    company_id: int
    company_name: str
    invoice_contacts_may_compile: bool | None = None
    dictionary: dict[str, str] | None = None
    where: str = "project"


@dataclass(frozen=True)
class BillingPeriodRecord:
    """A billing period of the project."""

    id: int
    position: int
    start_date: date
    end_date: date
    due_date: date | None
    status: str
    where: str = ""


@dataclass(frozen=True)
class CommitmentRecord:
    """A commitment (subcontract or purchase order).

    ``invoice_contacts``: [{id, name, email}]; ``private_list``: [{id, email}], or None when the
    source could not read it (fail closed).
    """

    id: int
    number: str
    title: str
    status: str
    executed: bool
    private: bool
    vendor_id: int | None
    vendor_name: str
    invoice_contacts: list[dict[str, Any]]
    private_list: list[dict[str, Any]] | None
    where: str = ""


@dataclass(frozen=True)
class UserRecord:
    """A project user; ``user_id`` is the Procore user id.

    ``commitments_access`` is one of ``storage.models.ACCESS_LEVELS``; ``access_known`` is False
    when the source could not determine it (the level is then ``"none"``).
    """

    user_id: int
    name: str
    email_address: str
    is_active: bool
    vendor_id: int | None
    vendor_name: str | None
    commitments_access: str
    access_known: bool = True
    where: str = ""


@dataclass(frozen=True)
class FileRecord:
    """A file's bytes: a local ``path`` still to be stored (bundle), or already in the blob store
    (``sha256`` and ``byte_size``), or neither yet (a Procore file not downloaded).

    ``url``: where the source can fetch the bytes (a Procore file URL: short-lived and signed,
    so never stored, logged or shown; left out of ``repr``).
    """

    filename: str
    path: Path | None = None
    sha256: str | None = None
    byte_size: int | None = None
    url: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class AttachmentRecord:
    """A file attached to an invoice; ``position`` is its place in the invoice's list."""

    id: int
    position: int
    content_type: str
    file: FileRecord
    where: str = ""


@dataclass(frozen=True)
class InvoiceRecord:
    """A subcontractor invoice (Procore requisition) with its attachments.

    ``items``/``summary_text`` None: the detail was not read (keep what is stored).
    ``source_updated_at``: the source's own ``updated_at`` (None for bundles), which tells the
    Procore source when a stored detail is stale. ``signed_pdf``: the DocuSign-signed copy, when
    the source knows one.
    """

    id: int
    number: int
    invoice_number: str | None
    commitment_id: int
    period_id: int
    requisition_start: date | None
    requisition_end: date | None
    billing_date: date | None
    status: str
    summary: dict[str, Any]
    current_payment_due: Decimal
    attachments: tuple[AttachmentRecord, ...]
    summary_text: dict[str, Any] | None = None
    items: list[Any] | None = None
    signed_pdf: FileRecord | None = None
    source_updated_at: datetime | None = None
    where: str = ""

    @property
    def has_detail(self) -> bool:
        """True when the snapshot carries the invoice's G703 lines and summary text."""
        return self.items is not None and self.summary_text is not None


@dataclass(frozen=True)
class Deletions:
    """Ids a partial snapshot says were deleted at the source (webhook ``delete`` events)."""

    invoice_ids: frozenset[int] = frozenset()
    commitment_ids: frozenset[int] = frozenset()
    user_ids: frozenset[int] = frozenset()
    billing_period_ids: frozenset[int] = frozenset()


@dataclass(frozen=True)
class ProjectSnapshot:
    """What one source read of one project (see the module contract)."""

    project: ProjectRecord
    billing_periods: tuple[BillingPeriodRecord, ...] = ()
    commitments: tuple[CommitmentRecord, ...] = ()
    users: tuple[UserRecord, ...] = ()
    invoices: tuple[InvoiceRecord, ...] = ()
    complete: bool = True
    source: str = SOURCE_BUNDLE
    as_of: datetime | None = None
    deleted: Deletions = field(default_factory=Deletions)

    def files(self) -> list[FileRecord]:
        """Every attachment and signed PDF file of the snapshot's invoices."""
        found: list[FileRecord] = []
        for invoice in self.invoices:
            found.extend(attachment.file for attachment in invoice.attachments)
            if invoice.signed_pdf is not None:
                found.append(invoice.signed_pdf)
        return found
