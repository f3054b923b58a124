"""The compile use case: from a project and chosen invoices to one backup PDF and its record.

Called by the CLI, the Slack job worker and digests alike. It re-checks permissions, applies the
billing-period rule (invoices whose period does not exist are left out and reported), orders the
invoices (contract number in natural order, then application number), checks that each invoice's
numbers tie out (`commands.tie_out`, on the sheets that are rendered: findings are reported, and
leave the invoice out only when the project's `tie_out_blocks` setting says so), runs the
CPU-heavy PDF work in the given executor (never on the event loop) and records the backup. An
attachment or signed PDF whose bytes are not stored yet (a Procore file not downloaded:
``sha256`` None) is left out, named on the cover and in the result as "not downloaded from
Procore yet", or with the reason the refresh gave (a file too large: its size and the cap).

Fresh at compile time: with a `commands.freshness.InvoiceFreshness` collaborator, the selected
invoices are re-read from their source right before compiling; when the source cannot be reached,
the compile goes on from the last sync and the result and the cover say "Procore data as of
<time>" (`CompileResult.data_as_of`).

Files: the blobs come from the object store (`storage.blobs.BlobStore`, passed in), staged to
local paths for the PDF work; the PDF is written in the store's workspace and then published to
the store (`CompileResult.file_key`). A blob the store does not have is left out and named (the
invoice and the file), and the rest of the backup compiles.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands import audit
from commands.access import AccessDenied, Requester, compilable_invoices, compile_access
from commands.freshness import Freshness, InvoiceFreshness
from commands.invoice_sheets import build_invoice_sheet
from commands.labels import billing_period_label, invoice_reference, natural_key, status_label
from commands.tie_out import check_invoice, tie_out_reason
from pdf.documents import AttachmentSource, BackupReport, BackupRequest, CoverNote, InvoiceEntry
from pdf.formatting import backup_file_name, format_money, format_period, generated_label
from pdf.jobs import run_assemble_backup
from storage.blobs import BACKUPS_PREFIX, BlobStore
from storage.models import Attachment, Backup, BillingPeriod, Invoice, Project

ProgressCallback = Callable[[str], Awaitable[None]]
T = TypeVar("T")

MAX_INVOICES = 200
PROGRESS_POLL_SECONDS = 0.5
# How often a running compile touches its workspace folder; far below the quiet time after which
# `commands.sweep_leftovers` may take a workspace (`LEFTOVER_QUIET_FOR`).
WORKSPACE_HEARTBEAT_SECONDS = 60.0
INTERRUPTED_WARNING = "compile interrupted (stopped before it ended)"
NOT_DOWNLOADED = "not downloaded from Procore yet"
SIGNED_NOT_DOWNLOADED = f"signed PDF {NOT_DOWNLOADED}; generated invoice used"
NOT_DOWNLOADED_BECAUSE = "not downloaded from Procore: {}"  # the refresh's reason (too large…)
SIGNED_NOT_STORED = "signed PDF missing from the file store; generated invoice used"


@dataclass(frozen=True)
class MissingPeriod:
    """An invoice left out because its billing period does not exist.

    `period_id` is for records only; people read `describe()`: the invoice, its amount, the
    dates it bills and the existing billing period that covers them (`covering_period`, if any).
    """

    invoice_label: str
    period_id: int
    amount: str = ""
    invoice_dates: str = ""
    covering_period: str = ""

    def reason(self) -> str:
        """Why it was left out and what covers its dates: ``"$12,000.00 for Oct 1–31, 2026: its
        billing period does not exist in the project. Billing period 11 (Oct 1–31, 2026) covers
        these dates."``"""
        head = ", ".join(part for part in (self.amount,) if part)
        if self.invoice_dates:
            head = f"{head} for {self.invoice_dates}" if head else f"for {self.invoice_dates}"
        text = f"{head}: its billing period" if head else "its billing period"
        text += " does not exist in the project."
        if self.covering_period:
            text += f" {self.covering_period} covers these dates."
        elif self.invoice_dates:
            text += " No existing billing period covers these dates."
        return text

    def describe(self) -> str:
        """`reason` after the invoice: ``"SC-010 Polar Air · Application #3, $12,000.00 for …"``."""
        reason = self.reason()
        separator = " " if reason.startswith("for ") else ": " if reason.startswith("its") else ", "
        return f"{self.invoice_label}{separator}{reason}"


@dataclass(frozen=True)
class IncludedInvoice:
    """An invoice in the backup, as the success message lists it (money as a decimal string)."""

    contract_number: str
    vendor_name: str
    application_number: int
    period: str
    current_payment_due: str
    pages: int

    def describe(self) -> str:
        """``"SC-001 · Acme Concrete · Application #3 · Oct 1–31, 2026 · $12,345.00 · 4 pages"``."""
        parts = [self.contract_number, self.vendor_name, f"Application #{self.application_number}"]
        parts += [self.period, format_money(Decimal(self.current_payment_due))]
        parts.append(f"{self.pages} page{'' if self.pages == 1 else 's'}")
        return " · ".join(part for part in parts if part)


class AttachmentNote(NamedTuple):
    """An attachment that was not merged: its invoice, its file name and why."""

    invoice_label: str
    filename: str
    reason: str


class RepairedAttachment(NamedTuple):
    """A damaged attachment that was repaired and merged."""

    invoice_label: str
    filename: str


@dataclass(frozen=True)
class TieOutNote:
    """An invoice whose numbers do not tie out: one text per finding, and whether it was left
    out for it (the project's `tie_out_blocks` setting)."""

    invoice_label: str
    findings: tuple[str, ...]
    left_out: bool = False


@dataclass(frozen=True)
class CompileResult:
    """What a compile produced, enough to write the success message or the warning."""

    status: str
    backup_id: int
    pdf_path: Path | None  # the PDF on this host's disk, when the store keeps it there
    file_name: str | None
    project_name: str
    invoice_count: int
    page_count: int
    byte_size: int
    missing_periods: tuple[MissingPeriod, ...]
    left_out_attachments: tuple[AttachmentNote, ...]
    unavailable_count: int = 0
    repaired_attachments: tuple[RepairedAttachment, ...] = ()
    tie_out: tuple[TieOutNote, ...] = ()
    data_as_of: datetime | None = None  # the live source was not reached: data of this sync
    data_source: str = ""  # names it ("Procore")
    included: tuple[IncludedInvoice, ...] = ()
    invoicing_tool: str = "Invoicing"  # the project's name for the Invoicing tool
    file_key: str | None = None  # the PDF's key in the object store

    @property
    def data_note(self) -> str | None:
        """``Procore data as of Nov 29, 2026 at 12:00 UTC`` when the source was not reached."""
        if self.data_as_of is None:
            return None
        return data_as_of_note(self.data_source, self.data_as_of)

    @property
    def total_due(self) -> Decimal:
        """The sum of the current payment due of the invoices in the backup."""
        return sum((Decimal(item.current_payment_due) for item in self.included), Decimal(0))

    @property
    def not_tying_out(self) -> tuple[TieOutNote, ...]:
        """Invoices in the backup whose numbers do not tie out."""
        return tuple(note for note in self.tie_out if not note.left_out)

    @property
    def left_out_not_tying_out(self) -> tuple[TieOutNote, ...]:
        """Invoices left out because their numbers do not tie out."""
        return tuple(note for note in self.tie_out if note.left_out)

    @property
    def has_file(self) -> bool:
        """True when a PDF was produced (and so is to be delivered)."""
        return self.status == "succeeded" and self.file_name is not None

    def to_json(self) -> dict[str, Any]:
        """A dict of JSON types, e.g. to store on a job so a resumed job need not compile again."""
        data = asdict(self)
        data["pdf_path"] = str(self.pdf_path) if self.pdf_path is not None else None
        data["data_as_of"] = self.data_as_of.isoformat() if self.data_as_of is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompileResult:
        """Inverse of `to_json`."""
        return cls(
            status=str(data["status"]),
            backup_id=int(data["backup_id"]),
            pdf_path=Path(data["pdf_path"]) if data.get("pdf_path") else None,
            file_name=data.get("file_name"),
            project_name=str(data["project_name"]),
            invoice_count=int(data["invoice_count"]),
            page_count=int(data["page_count"]),
            byte_size=int(data["byte_size"]),
            missing_periods=tuple(MissingPeriod(**item) for item in data["missing_periods"]),
            left_out_attachments=tuple(
                AttachmentNote(*item) for item in data["left_out_attachments"]
            ),
            unavailable_count=int(data.get("unavailable_count", 0)),
            repaired_attachments=tuple(
                RepairedAttachment(*item) for item in data.get("repaired_attachments", [])
            ),
            tie_out=tuple(
                TieOutNote(
                    invoice_label=str(item["invoice_label"]),
                    findings=tuple(item["findings"]),
                    left_out=bool(item.get("left_out", False)),
                )
                for item in data.get("tie_out", [])
            ),
            data_as_of=datetime.fromisoformat(data["data_as_of"])
            if data.get("data_as_of")
            else None,
            data_source=str(data.get("data_source") or ""),
            included=tuple(IncludedInvoice(**item) for item in data.get("included", [])),
            invoicing_tool=str(data.get("invoicing_tool") or "Invoicing"),
            file_key=data.get("file_key"),
        )

    def fix_hint(self) -> str:
        """How to make the left-out invoices compilable."""
        one = len(self.missing_periods) == 1
        return (
            f"To include {'it' if one else 'them'}, move "
            f"{'the invoice' if one else 'each invoice'} to an existing billing period in Procore "
            f"({self.invoicing_tool} tool), or create the missing period there "
            f"({self.invoicing_tool} settings, billing periods), then compile again."
        )

    def tie_out_hint(self) -> str:
        """How to get invoices left out for their numbers into a backup."""
        one = len(self.left_out_not_tying_out) == 1
        return (
            f"To include {'it' if one else 'them'}, correct "
            f"{'the invoice' if one else 'the invoices'} in Procore and import again, or let a "
            "project admin turn off 'leave out invoices that do not tie out' (access settings)."
        )

    def summary_text(self) -> str:
        """The plain-text summary a person reads (CLI output; the Slack reply says the same)."""
        lines: list[str] = []
        if self.status == "succeeded":
            lines.append(
                f"Compiled an invoice backup of {_count(self.invoice_count, 'invoice')} for "
                f"{self.project_name}: {_count(self.page_count, 'page')}, "
                f"{format_size(self.byte_size)}."
            )
            lines.extend(f"  - {item.describe()}" for item in self.included)
            if self.included:
                lines.append(f"Total current payment due: {format_money(self.total_due)}")
            lines.append(f"File: {self.file_name}")
        else:
            lines.append(f"No invoice backup was produced for {self.project_name}.")
        if self.data_note:
            lines.append(
                f"{self.data_source or 'The source'} could not be reached: {self.data_note} "
                "(the last sync)."
            )
        if self.missing_periods:
            count = len(self.missing_periods)
            whose = "whose billing period does" if count == 1 else "whose billing periods do"
            lines.append(f"Left out: {_count(count, 'invoice')} {whose} not exist:")
            lines.extend(f"  - {missing.describe()}" for missing in self.missing_periods)
            lines.append(self.fix_hint())
        if self.left_out_not_tying_out:
            count = len(self.left_out_not_tying_out)
            lines.append(f"Left out: {_count(count, 'invoice')} whose numbers do not tie out:")
            lines.extend(_tie_out_lines(self.left_out_not_tying_out))
            lines.append(self.tie_out_hint())
        if self.not_tying_out:
            count = len(self.not_tying_out)
            lines.append(
                f"Checks: {_count(count, 'invoice')} {'does' if count == 1 else 'do'} not tie out "
                "(listed on the cover page):"
            )
            lines.extend(_tie_out_lines(self.not_tying_out))
        if self.unavailable_count:
            count = self.unavailable_count
            lines.append(
                f"Left out: {_count(count, 'selected invoice')} "
                f"{'is' if count == 1 else 'are'} no longer available to you."
            )
        if self.repaired_attachments:
            lines.append("Damaged attachments repaired and included:")
            lines.extend(
                f"  - {invoice}: {filename}" for invoice, filename in self.repaired_attachments
            )
        if self.left_out_attachments:
            lines.append("Attachments not merged (listed on the cover page):")
            lines.extend(
                f"  - {invoice}: {filename} ({reason})"
                for invoice, filename, reason in self.left_out_attachments
            )
        return "\n".join(lines)


def data_as_of_note(source: str, as_of: datetime) -> str:
    """``Procore data as of Nov 29, 2026 at 12:00 UTC``."""
    return f"{source or 'Source'} data as of {generated_label(as_of)}"


def _count(count: int, word: str) -> str:
    """``"1 invoice"``, ``"3 invoices"``."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def _tie_out_lines(notes: tuple[TieOutNote, ...]) -> list[str]:
    return [f"  - {note.invoice_label}: {finding}" for note in notes for finding in note.findings]


def format_size(byte_size: int) -> str:
    """``1536`` → ``"1.5 KB"``."""
    size = float(byte_size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def zone(name: str) -> ZoneInfo:
    """The named time zone, UTC when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def _noop_progress(_: str) -> None:
    return None


def _entry(
    invoice: Invoice,
    attachments: list[Attachment],
    periods: dict[int, BillingPeriod],
    local_path: Callable[[str], Path],
) -> InvoiceEntry:
    commitment = invoice.commitment
    period = periods[invoice.period_id]
    label = status_label(invoice.status)
    signed_path = str(local_path(invoice.signed_pdf_sha256)) if invoice.signed_pdf_sha256 else None
    sheet = build_invoice_sheet(
        application_number=invoice.number,
        invoice_number=invoice.invoice_number,
        status_label=label,
        billing_date=invoice.billing_date,
        summary=invoice.summary,
        summary_text=invoice.summary_text,
        items=invoice.items,
    )
    return InvoiceEntry(
        invoice_id=invoice.id,
        contract_number=commitment.number,
        contract_title=commitment.title,
        vendor_name=commitment.vendor_name or "",
        application_number=invoice.number,
        invoice_number=invoice.invoice_number or "",
        period_label=f"#{period.position} · {format_period(period.start_date, period.end_date)}",
        status_label=label,
        current_payment_due=invoice.current_payment_due,
        sheet=sheet,
        signed_pdf_path=signed_path,
        attachments=tuple(
            AttachmentSource(
                filename=attachment.filename,
                content_type=attachment.content_type,
                path=str(local_path(attachment.sha256)),
            )
            for attachment in attachments
            if attachment.sha256 is not None
        ),
        findings=check_invoice(sheet),
    )


def _entries(
    included: list[tuple[Invoice, list[Attachment]]],
    periods: dict[int, BillingPeriod],
    local_path: Callable[[str], Path],
) -> list[InvoiceEntry]:
    """The invoices as the PDF shows them, each with its tie-out findings (CPU work). Files
    are named by where the store stages them (``local_path``; see `_staged_entries`)."""
    return [_entry(invoice, attachments, periods, local_path) for invoice, attachments in included]


def _blob_hashes(included: list[tuple[Invoice, list[Attachment]]]) -> list[str]:
    """Every stored blob a compile of ``included`` reads: signed PDFs and attachments."""
    hashes: list[str] = []
    for invoice, attachments in included:
        if invoice.signed_pdf_sha256:
            hashes.append(invoice.signed_pdf_sha256)
        hashes.extend(a.sha256 for a in attachments if a.sha256 is not None)
    return hashes


def _staged_entries(
    entries: list[InvoiceEntry],
    included: list[tuple[Invoice, list[Attachment]]],
    staged: dict[str, Path | None],
    references: dict[int, str],
) -> tuple[list[InvoiceEntry], tuple[AttachmentNote, ...]]:
    """The entries once their blobs are staged, and a note for each signed PDF the store does
    not have (that invoice is rendered from its data instead). An attachment the store does not
    have keeps its path, which does not exist: the assembly leaves it out and names it."""
    signed_gone = {
        invoice.id: invoice.signed_pdf_filename or "signed PDF"
        for invoice, _ in included
        if invoice.signed_pdf_sha256 and staged.get(invoice.signed_pdf_sha256) is None
    }
    notes = tuple(
        AttachmentNote(references[invoice_id], filename, SIGNED_NOT_STORED)
        for invoice_id, filename in signed_gone.items()
    )
    return [
        replace(entry, signed_pdf_path=None) if entry.invoice_id in signed_gone else entry
        for entry in entries
    ], notes


def _not_downloaded(
    included: list[tuple[Invoice, list[Attachment]]],
    references: dict[int, str],
    fresh: Freshness | None = None,
) -> tuple[AttachmentNote, ...]:
    """The signed PDFs and attachments of ``included`` whose bytes are not stored yet, each with
    the reason ``fresh`` gave for it (too large) or "not downloaded from Procore yet"."""
    attachment_problems = fresh.attachment_problems if fresh is not None else {}
    signed_problems = fresh.signed_pdf_problems if fresh is not None else {}
    notes: list[AttachmentNote] = []
    for invoice, attachments in included:
        reference = references[invoice.id]
        if invoice.signed_pdf_filename and not invoice.signed_pdf_sha256:
            problem = signed_problems.get(invoice.id)
            reason = (
                f"signed PDF {NOT_DOWNLOADED_BECAUSE.format(problem)}; generated invoice used"
                if problem
                else SIGNED_NOT_DOWNLOADED
            )
            notes.append(AttachmentNote(reference, invoice.signed_pdf_filename, reason))
        for attachment in attachments:
            if attachment.sha256 is None:
                problem = attachment_problems.get(attachment.id)
                reason = NOT_DOWNLOADED_BECAUSE.format(problem) if problem else NOT_DOWNLOADED
                notes.append(AttachmentNote(reference, attachment.filename, reason))
    return tuple(notes)


def _backup_request(
    project: Project,
    generated_at: datetime,
    entries: list[InvoiceEntry],
    missing: tuple[MissingPeriod, ...],
    stopped: list[InvoiceEntry],
    references: dict[int, str],
    not_downloaded: tuple[AttachmentNote, ...],
    output_path: Path,
    data_note: str | None = None,
) -> BackupRequest:
    """The plain-data request for `assemble_backup` (creates the output folder)."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    return BackupRequest(
        project_name=project.name,
        project_number=project.project_number,
        generated_at=generated_at,
        invoices=tuple(entries),
        output_path=str(output_path),
        progress_path=str(output_path.parent / "progress.txt"),
        data_note=data_note,
        subcontractor_word=project.names()["subcontractor"],
        not_included=tuple(CoverNote(m.invoice_label, m.reason()) for m in missing)
        + tuple(
            CoverNote(references[entry.invoice_id], tie_out_reason(entry.findings))
            for entry in stopped
        )
        + tuple(
            CoverNote(f"{note.invoice_label}: {note.filename}", note.reason)
            for note in not_downloaded
        ),
    )


def _tie_out_notes(
    entries: list[InvoiceEntry], stopped_ids: set[int], references: dict[int, str]
) -> tuple[TieOutNote, ...]:
    return tuple(
        TieOutNote(
            references[entry.invoice_id],
            tuple(finding.text() for finding in entry.findings),
            left_out=entry.invoice_id in stopped_ids,
        )
        for entry in entries
        if entry.findings
    )


def _missing_warnings(missing: tuple[MissingPeriod, ...]) -> list[str]:
    return [m.describe() for m in missing]


def _tie_out_warnings(tie_out: tuple[TieOutNote, ...]) -> list[str]:
    return [
        f"{note.invoice_label}: {'left out, ' if note.left_out else ''}does not tie out: {finding}"
        for note in tie_out
        for finding in note.findings
    ]


def _covering_period(
    start: date | None, end: date | None, periods: dict[int, BillingPeriod]
) -> BillingPeriod | None:
    """The existing billing period whose dates cover ``start``–``end`` (the latest, if several)."""
    if start is None and end is None:
        return None
    first, last = start or end, end or start
    covering = [
        period
        for period in periods.values()
        if period.start_date is not None
        and period.end_date is not None
        and period.start_date <= first
        and last <= period.end_date
    ]
    return max(covering, key=lambda period: period.position, default=None)


def _missing_period(invoice: Invoice, periods: dict[int, BillingPeriod]) -> MissingPeriod:
    covering = _covering_period(invoice.requisition_start, invoice.requisition_end, periods)
    dates = (
        format_period(invoice.requisition_start, invoice.requisition_end)
        if invoice.requisition_start or invoice.requisition_end
        else ""
    )
    return MissingPeriod(
        _reference(invoice),
        invoice.period_id,
        amount=format_money(invoice.current_payment_due),
        invoice_dates=dates,
        covering_period=billing_period_label(
            covering.position, covering.start_date, covering.end_date
        )
        if covering
        else "",
    )


def _included(
    entries: list[InvoiceEntry], periods: dict[int, BillingPeriod], pdf_report: BackupReport
) -> tuple[IncludedInvoice, ...]:
    pages = {item.invoice_id: item.last_page - item.first_page + 1 for item in pdf_report.invoices}
    return tuple(
        IncludedInvoice(
            contract_number=entry.contract_number,
            vendor_name=entry.vendor_name,
            application_number=entry.application_number,
            period=entry.period_label.split(" · ", 1)[-1],
            current_payment_due=str(entry.current_payment_due),
            pages=pages.get(entry.invoice_id, 0),
        )
        for entry in entries
    )


def _reference(invoice: Invoice) -> str:
    commitment = invoice.commitment
    return invoice_reference(invoice.number, commitment.number, commitment.vendor_name or "")


async def compile_backup(
    requester: Requester,
    project_id: int,
    invoice_ids: list[int],
    *,
    timezone: str = "UTC",
    executor: concurrent.futures.Executor | None = None,
    progress: ProgressCallback | None = None,
    blobs: BlobStore,
    now: datetime | None = None,
    freshness: InvoiceFreshness | None = None,
) -> CompileResult:
    """Compile one backup of `invoice_ids` and record it, its PDF in the object store ``blobs``.

    The blobs it needs are staged to local paths first; one the store does not have is left out
    (named with its invoice). `StoreUnavailable`/`StoreRefused` propagate (the backup is marked
    failed): the caller retries when the store answers.

    Raises `AccessDenied` when the requester may not compile on the project. Invoices that do not
    exist or that the requester may not compile are left out and counted, never named. With no
    `executor` the PDF work runs in a worker thread.

    Cancelled while the PDF is made, it waits until the PDF work stops (the caller ends the
    executor), removes the partial output and marks the backup
    failed ("interrupted") before it lets the cancellation go on.

    With `freshness`, the selected invoices are re-read from their source first (see the
    module docstring).
    """
    report = progress or _noop_progress
    try:
        access = await compile_access(requester, project_id)
    except AccessDenied:
        await audit.record(
            requester.key, "compile", "refused", project_id=project_id, invoices=len(invoice_ids)
        )
        raise
    project = access.project
    wanted = list(dict.fromkeys(invoice_ids))[:MAX_INVOICES]
    data_as_of: datetime | None = None
    data_source = ""
    fresh: Freshness | None = None
    if freshness is not None and wanted:
        await report("re-reading the invoices from the source")
        fresh = await freshness.refresh(project_id, wanted)
        if fresh.stale_as_of is not None:
            data_as_of, data_source = fresh.stale_as_of, fresh.source
    invoices = (
        await compilable_invoices(access).filter(id__in=wanted).prefetch_related("commitment")
    )
    unavailable = len(wanted) - len(invoices)
    periods = {p.id: p for p in await BillingPeriod.filter(project_id=project_id).all()}
    invoices.sort(key=lambda i: (natural_key(i.commitment.number), i.number, i.id))
    included = [invoice for invoice in invoices if invoice.period_id in periods]
    without_period = [invoice for invoice in invoices if invoice.period_id not in periods]
    missing = tuple(_missing_period(invoice, periods) for invoice in without_period)
    attachments_by_invoice: dict[int, list[Attachment]] = {invoice.id: [] for invoice in included}
    for attachment in await Attachment.filter(invoice_id__in=list(attachments_by_invoice)).order_by(
        "invoice_id", "position", "id"
    ):
        attachments_by_invoice[attachment.invoice_id].append(attachment)

    generated_at = (now or datetime.now(UTC)).astimezone(zone(timezone))
    if data_as_of is not None:
        data_as_of = data_as_of.astimezone(zone(timezone))
    references = {invoice.id: _reference(invoice) for invoice in included}
    # Parsing and checking every sheet is CPU work.
    checked = await asyncio.to_thread(
        _entries,
        [(invoice, attachments_by_invoice[invoice.id]) for invoice in included],
        periods,
        blobs.local_path,
    )
    stopped = [entry for entry in checked if entry.findings] if project.tie_out_blocks else []
    stopped_ids = {entry.invoice_id for entry in stopped}
    tie_out = _tie_out_notes(checked, stopped_ids, references)
    entries = [entry for entry in checked if entry.invoice_id not in stopped_ids]
    backup = await Backup.create(
        project_id=project_id,
        requested_by=requester.key,
        requested_at=generated_at,
        invoice_ids=[invoice.id for invoice in invoices],
        excluded=[
            {"invoice_id": i.id, "period_id": i.period_id, "reason": "billing period missing"}
            for i in without_period
        ]
        + [{"invoice_id": entry.invoice_id, "reason": "does not tie out"} for entry in stopped],
        page_count=0,
        byte_size=0,
        file_name="",
        file_path="",
        warnings=[],
        status="running",
    )
    if not entries:
        backup.status = "nothing_to_compile"
        backup.warnings = _missing_warnings(missing) + _tie_out_warnings(tie_out)
        await backup.save()
        await audit.record(
            requester.key, "compile", "nothing_to_compile", project_id=project_id, backup=backup.id
        )
        return CompileResult(
            status="nothing_to_compile",
            backup_id=backup.id,
            pdf_path=None,
            file_name=None,
            project_name=project.name,
            invoice_count=0,
            page_count=0,
            byte_size=0,
            missing_periods=missing,
            left_out_attachments=(),
            unavailable_count=unavailable,
            tie_out=tie_out,
            data_as_of=data_as_of,
            data_source=data_source,
            invoicing_tool=project.names()["invoicing"],
        )

    file_name = backup_file_name(project.name, project.project_number, generated_at)
    file_key = f"{BACKUPS_PREFIX}/{backup.id}-{uuid.uuid4().hex[:8]}/{file_name}"
    output_path = blobs.backup_workspace(file_key)
    kept = [
        (invoice, attachments_by_invoice[invoice.id])
        for invoice in included
        if invoice.id not in stopped_ids
    ]
    not_downloaded = _not_downloaded(kept, references, fresh)
    try:
        await report("fetching the files")
        async with blobs.staged(_blob_hashes(kept)) as staged:
            entries, not_stored = _staged_entries(entries, kept, staged, references)
            not_downloaded += not_stored
            request = await _in_thread_to_the_end(
                _backup_request,
                project,
                generated_at,
                entries,
                missing,
                stopped,
                references,
                not_downloaded,
                output_path,
                data_as_of_note(data_source, data_as_of) if data_as_of is not None else None,
            )
            await report(_starting_note(len(entries), len(wanted)))
            # The store may start taking the PDF while it is written; it is stored on exit.
            async with blobs.publishing_backup(file_key):
                pdf_report = await _run_assembly(request, executor, report)
                await report("storing the PDF")
    except asyncio.CancelledError:
        await _discard_interrupted(backup, output_path.parent)
        raise
    except Exception as error:
        await blobs.discard_workspace(file_key)
        backup.status = "failed"
        backup.warnings = [f"compile failed: {error}"]
        await backup.save()
        await audit.record(
            requester.key, "compile", "failed", project_id=project_id, backup=backup.id
        )
        raise
    left_out = not_downloaded + tuple(
        AttachmentNote(
            references.get(item.invoice_id, str(item.invoice_id)), item.filename, item.reason
        )
        for item in pdf_report.left_out
    )
    backup.status = "succeeded"
    backup.page_count = pdf_report.page_count
    backup.byte_size = pdf_report.byte_size
    backup.file_name = file_name
    backup.file_path = file_key
    backup.invoice_ids = [entry.invoice_id for entry in entries]
    backup.warnings = (
        [f"{invoice}: {name} ({reason})" for invoice, name, reason in left_out]
        + _missing_warnings(missing)
        + _tie_out_warnings(tie_out)
        + ([data_as_of_note(data_source, data_as_of)] if data_as_of is not None else [])
    )
    await backup.save()
    await audit.record(
        requester.key,
        "compile",
        "succeeded",
        project_id=project_id,
        backup=backup.id,
        invoices=len(entries),
        pages=pdf_report.page_count,
    )
    return CompileResult(
        status="succeeded",
        backup_id=backup.id,
        pdf_path=output_path if await asyncio.to_thread(output_path.is_file) else None,
        file_name=file_name,
        project_name=project.name,
        invoice_count=len(entries),
        page_count=pdf_report.page_count,
        byte_size=pdf_report.byte_size,
        missing_periods=missing,
        left_out_attachments=left_out,
        unavailable_count=unavailable,
        repaired_attachments=tuple(
            RepairedAttachment(references.get(item.invoice_id, str(item.invoice_id)), item.filename)
            for item in pdf_report.repaired
        ),
        tie_out=tie_out,
        data_as_of=data_as_of,
        data_source=data_source,
        included=_included(entries, periods, pdf_report),
        invoicing_tool=project.names()["invoicing"],
        file_key=file_key,
    )


def _starting_note(included: int, asked: int) -> str:
    """``"preparing 3 invoices"``, or ``"preparing 5 of 6 invoices (1 left out)"``."""
    if included == asked:
        return f"preparing {_count(included, 'invoice')}"
    return f"preparing {included} of {_count(asked, 'invoice')} ({asked - included} left out)"


async def _run_assembly(
    request: BackupRequest,
    executor: concurrent.futures.Executor | None,
    report: ProgressCallback,
) -> BackupReport:
    """Run `assemble_backup` off the event loop, relaying its progress notes to `report` and
    touching the workspace folder every `WORKSPACE_HEARTBEAT_SECONDS` (a workspace nothing
    touched for long belongs to no live compile: `commands.sweep_leftovers`)."""
    if executor is None:
        work = asyncio.ensure_future(asyncio.to_thread(run_assemble_backup, request))
    else:
        work = asyncio.ensure_future(_in_executor(executor, request))
    progress_file = Path(request.progress_path) if request.progress_path else None
    workspace = Path(request.output_path).parent
    loop = asyncio.get_running_loop()
    last_note, last_beat = "", loop.time()
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=PROGRESS_POLL_SECONDS)
            note = await asyncio.to_thread(_read_note, progress_file)
            if note and note != last_note and not work.done():
                last_note = note
                await report(note)
            if loop.time() - last_beat >= WORKSPACE_HEARTBEAT_SECONDS:
                last_beat = loop.time()
                await asyncio.to_thread(_mark_alive, workspace)
        return work.result()
    except asyncio.CancelledError:
        await _stopped(work)
        raise
    finally:
        if progress_file is not None:
            progress_file.unlink(missing_ok=True)


async def _in_executor(
    executor: concurrent.futures.Executor, request: BackupRequest
) -> BackupReport:
    """`assemble_backup` in ``executor``, submitted from a worker thread: a process pool starts
    a worker process (and, the first time, its fork server) inside ``submit``, which blocks for
    as long as that takes (over a second on a busy machine), and the event loop must not."""
    submitted = await asyncio.to_thread(executor.submit, run_assemble_backup, request)
    return await asyncio.wrap_future(submitted)


def _mark_alive(workspace: Path) -> None:
    """Set the workspace folder's modification time to now (nothing when it is not there)."""
    with contextlib.suppress(OSError):
        os.utime(workspace)


def _read_note(progress_file: Path | None) -> str:
    if progress_file is None:
        return ""
    try:
        return progress_file.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


async def _in_thread_to_the_end(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a worker thread; if cancelled, wait for the thread to end (so that
    it creates no file after the cleanup) before the cancellation goes on."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await _stopped(work)
        raise


async def _stopped(work: asyncio.Future[Any]) -> None:
    """Wait until interrupted work no longer runs (for PDF work, the caller ends its executor),
    and drop its outcome."""
    await asyncio.wait({work})
    if not work.cancelled():
        work.exception()  # retrieved: asyncio would otherwise log it


async def _discard_interrupted(backup: Backup, folder: Path) -> None:
    """An interrupted compile leaves no partial file, and its record says it was interrupted.
    Best effort: the interruption goes on whatever happens here."""
    await asyncio.to_thread(shutil.rmtree, folder, True)
    backup.status = "failed"
    backup.warnings = [INTERRUPTED_WARNING]
    with contextlib.suppress(Exception):
        await backup.save()
