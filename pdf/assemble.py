"""Compile one subcontractor invoice backup PDF: cover, invoices and attachments, outline, numbers.

`assemble_backup(request)` writes `request.output_path` and returns a `BackupReport`. It is a pure
function of its input files (picklable data in and out, so it runs in a worker process) and never
raises because of one bad attachment or a bad signed PDF: those are left out (or repaired) and
reported. The PDF holds, in order:

1. the cover (`pdf.cover`): every included invoice with its final page range, the total current
   payment due, and everything not included with its reason;
2. per invoice: the signed PDF when there is a usable one, else `render_invoice(entry.sheet)`;
   then each PDF attachment that passed triage (`pdf.attachments`), in order;
3. an outline: "Cover", then one item per invoice with a child per merged attachment, under which
   the attachment's own bookmarks are nested;
4. "Backup page N of M" on every page (`pdf.stamp`).

Design: pypdf only triages inputs (its parser has decompression limits; damaged files get a qpdf
repair pass), in a child process with a memory cap and a per-file deadline (`pdf.inspection`). The merge, outline, stamps and the write use pikepdf
(qpdf): stream data is copied from the open source files at write time without being decoded, so
memory stays near-constant whatever the size of the scans, and copying pages with
`Pdf.add_pages_from` keeps form fields (colliding names are renamed, values kept), named
destinations (renamed on collision) and each source's outline.
"""

from __future__ import annotations

import io
import os
import re
import resource
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import pikepdf
from pikepdf import Name, ObjectStreamMode, OutlineItem, StreamDecodeLevel

from pdf.attachments import DAMAGED, UNSAFE, Accepted, Rejected, TriageResult
from pdf.cover import CoverContent, CoverInvoiceRow, render_cover
from pdf.documents import (
    BackupReport,
    BackupRequest,
    InvoiceEntry,
    InvoicePages,
    LeftOutAttachment,
)
from pdf.inspection import InspectionJob, inspect_files
from pdf.rendering import InvoiceRenderer
from pdf.stamp import stamp_page_numbers

PDF_CONTENT_TYPE = "application/pdf"
COVER_BOOKMARK = "Cover"
SAVE_ATTEMPTS = 4
OUTLINE_MAX_DEPTH = 80
_DOCUMENT_LEVEL_KEYS = (Name.AcroForm, Name.Names, Name.Dests, Name.Outlines, Name.OCProperties)
_ILLEGAL_FILE_NAME_CHARACTERS = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def backup_file_name(project_name: str, project_number: str, when: datetime) -> str:
    """`Subcontractor invoice backup - {name} - {number} - {YYYY-MM-DD} - {HHMM}.pdf`.

    `when` is already in the requester's time zone. Characters not allowed in file names
    (``/ \\ : * ? " < > |`` and control characters) become ``-``.
    """
    name = (
        f"Subcontractor invoice backup - {project_name} - {project_number} - "
        f"{when:%Y-%m-%d} - {when:%H%M}.pdf"
    )
    return _ILLEGAL_FILE_NAME_CHARACTERS.sub("-", name)


def assemble_backup(request: BackupRequest) -> BackupReport:
    """Write the backup PDF for `request` to `request.output_path` and say what it holds."""
    output_path = Path(request.output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    _raise_open_file_limit(_source_count(request))
    sheets_to_render = [
        entry.sheet if entry.signed_pdf_path is None else None for entry in request.invoices
    ]
    with (
        InvoiceRenderer(sheets_to_render) as renderer,
        tempfile.TemporaryDirectory(prefix=".backup-", dir=output_path.parent) as scratch,
    ):
        plans = _triage(request, scratch)
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                return _write_backup(request, plans, renderer, Path(scratch))
            except _SaveFailed as failure:
                culprits = _paths_named_in(str(failure.error), plans)
                if not culprits or attempt == SAVE_ATTEMPTS:
                    raise failure.error from None  # not the fault of one input file
                plans = [plan.without(culprits) for plan in plans]
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Triage


@dataclass(frozen=True)
class _InvoicePlan:
    """An invoice with the triage of its signed PDF (if any) and of each attachment."""

    entry: InvoiceEntry
    signed: TriageResult | None
    attachments: tuple[TriageResult, ...]

    def without(self, paths: set[str]) -> _InvoicePlan:
        """This plan with the given accepted files rejected as unreadable."""

        def demote(result: TriageResult | None) -> TriageResult | None:
            if isinstance(result, Accepted) and result.path in paths:
                return Rejected(UNSAFE)
            return result

        attachments = tuple(demote(result) for result in self.attachments)
        return replace(self, signed=demote(self.signed), attachments=attachments)  # type: ignore[arg-type]


def _triage(request: BackupRequest, scratch: str) -> list[_InvoicePlan]:
    """Triage every signed PDF and attachment of the request (in a capped child process)."""
    jobs: list[InspectionJob] = []
    for entry in request.invoices:
        if entry.signed_pdf_path is not None:
            jobs.append(InspectionJob(entry.signed_pdf_path, PDF_CONTENT_TYPE))
        jobs += [InspectionJob(a.path, a.content_type) for a in entry.attachments]
    results = iter(inspect_files(jobs, scratch))
    plans = []
    for entry in request.invoices:
        signed = next(results) if entry.signed_pdf_path is not None else None
        attachments = tuple(next(results) for _ in entry.attachments)
        plans.append(_InvoicePlan(entry=entry, signed=signed, attachments=attachments))
    return plans


def _paths_named_in(message: str, plans: list[_InvoicePlan]) -> set[str]:
    """Accepted input files whose path qpdf names in an error message."""
    accepted = [
        result.path
        for plan in plans
        for result in (plan.signed, *plan.attachments)
        if isinstance(result, Accepted)
    ]
    return {path for path in accepted if path in message}


# ---------------------------------------------------------------------------------------------
# Writing


class _SaveFailed(Exception):
    """qpdf failed while writing; its message may name the input file at fault."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _MergedAttachment:
    filename: str
    first_page: int  # 0-based, counted from the first page after the cover
    carried_outline_items: int  # top-level items of its own outline, nested under it later


@dataclass
class _MergedInvoice:
    entry: InvoiceEntry
    first_page: int  # 0-based, counted from the first page after the cover
    page_count: int
    used_signed_pdf: bool
    attachments: list[_MergedAttachment]


@dataclass
class _Body:
    invoices: list[_MergedInvoice] = field(default_factory=list)
    left_out: list[LeftOutAttachment] = field(default_factory=list)
    repaired: list[LeftOutAttachment] = field(default_factory=list)


def _write_backup(
    request: BackupRequest, plans: list[_InvoicePlan], renderer: InvoiceRenderer, scratch: Path
) -> BackupReport:
    temporary_output = scratch / "backup.pdf"
    with ExitStack() as open_files:
        backup = open_files.enter_context(pikepdf.new())
        body = _merge_body(backup, plans, renderer, open_files)
        cover_pages = _prepend_cover(backup, request, body, open_files)
        _write_outline(backup, body, cover_pages)
        stamp_page_numbers(backup)
        _set_document_info(backup, request)
        page_count = len(backup.pages)
        try:
            backup.save(
                temporary_output,
                stream_decode_level=StreamDecodeLevel.none,
                compress_streams=False,
                object_stream_mode=ObjectStreamMode.generate,
            )
        except Exception as error:
            raise _SaveFailed(error) from error
    os.replace(temporary_output, request.output_path)
    return BackupReport(
        output_path=request.output_path,
        page_count=page_count,
        byte_size=os.path.getsize(request.output_path),
        invoices=tuple(_invoice_pages(invoice, cover_pages) for invoice in body.invoices),
        left_out=tuple(body.left_out),
        repaired=tuple(body.repaired),
    )


def _merge_body(
    backup: pikepdf.Pdf,
    plans: list[_InvoicePlan],
    renderer: InvoiceRenderer,
    open_files: ExitStack,
) -> _Body:
    body = _Body()
    for index, plan in enumerate(plans):
        first_page = len(backup.pages)
        used_signed_pdf = _append_invoice_document(backup, plan, open_files, body)
        if not used_signed_pdf:
            rendered = renderer.render(index, plan.entry.sheet)
            _append_pdf(backup, rendered, open_files, carry_outline=False)
        merged = [
            attachment
            for index in range(len(plan.attachments))
            if (attachment := _append_attachment(backup, plan, index, open_files, body))
        ]
        body.invoices.append(
            _MergedInvoice(
                entry=plan.entry,
                first_page=first_page,
                page_count=len(backup.pages) - first_page,
                used_signed_pdf=used_signed_pdf,
                attachments=merged,
            )
        )
    return body


def _append_invoice_document(
    backup: pikepdf.Pdf, plan: _InvoicePlan, open_files: ExitStack, body: _Body
) -> bool:
    """Append the signed PDF if there is a usable one and return True; else record why not."""
    entry = plan.entry
    if entry.signed_pdf_path is not None:
        filename = os.path.basename(entry.signed_pdf_path)
        reason = plan.signed.reason if isinstance(plan.signed, Rejected) else DAMAGED
        if isinstance(plan.signed, Accepted):
            try:
                _append_pdf(backup, plan.signed.path, open_files, carry_outline=False)
            except Exception:
                pass  # falls back to the rendered invoice below
            else:
                if plan.signed.repaired:
                    body.repaired.append(
                        LeftOutAttachment(entry.invoice_id, filename, "signed PDF repaired")
                    )
                return True
        body.left_out.append(
            LeftOutAttachment(entry.invoice_id, filename, _signed_fallback_reason(reason))
        )
    return False


def _signed_fallback_reason(reason: str) -> str:
    """``"damaged"`` → ``"signed PDF damaged; generated invoice used"``."""
    what = "missing" if reason == "missing file" else reason
    return f"signed PDF {what}; generated invoice used"


def _append_attachment(
    backup: pikepdf.Pdf, plan: _InvoicePlan, index: int, open_files: ExitStack, body: _Body
) -> _MergedAttachment | None:
    """Append one triaged attachment; a failure is recorded and leaves `backup` as it was."""
    attachment = plan.entry.attachments[index]
    result = plan.attachments[index]
    invoice_id = plan.entry.invoice_id
    if isinstance(result, Rejected):
        body.left_out.append(LeftOutAttachment(invoice_id, attachment.filename, result.reason))
        return None
    first_page = len(backup.pages)
    try:
        carried = _append_pdf(backup, result.path, open_files, carry_outline=True)
    except Exception:
        body.left_out.append(LeftOutAttachment(invoice_id, attachment.filename, DAMAGED))
        return None
    if result.repaired:
        body.repaired.append(
            LeftOutAttachment(invoice_id, attachment.filename, "damaged file repaired")
        )
    return _MergedAttachment(attachment.filename, first_page, carried)


def _append_pdf(
    backup: pikepdf.Pdf, source: str | bytes, open_files: ExitStack, *, carry_outline: bool
) -> int:
    """Append every page of `source` (a path or PDF bytes); kept open until the backup is saved.

    Returns how many top-level outline items of the source were appended to `backup`'s outline.
    On failure the pages and outline items appended so far are removed again.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else None
    pdf = open_files.enter_context(pikepdf.open(stream if stream is not None else source))
    first_page = len(backup.pages)
    last_item_before = _last_outline_item(backup)
    try:
        if _has_document_level_parts(pdf):
            backup.add_pages_from(pdf, outlines="preserve" if carry_outline else "ignore")
        else:
            for page in pdf.pages:
                backup.pages.append(page)
    except Exception:
        del backup.pages[first_page:]
        _truncate_outline(backup, last_item_before)
        raise
    if not carry_outline or Name.Outlines not in pdf.Root:
        return 0
    return _count_outline_items_after(backup, last_item_before)


def _has_document_level_parts(pdf: pikepdf.Pdf) -> bool:
    """Whether the catalog holds what a plain page copy would lose: forms, names, layers, outline.

    `Pdf.add_pages_from` carries those over (renaming colliding field names and destinations);
    it costs about 1 ms per source more than appending the pages, so it is used only when needed.
    """
    return any(key in pdf.Root for key in _DOCUMENT_LEVEL_KEYS)


def _last_outline_item(pdf: pikepdf.Pdf) -> pikepdf.Object | None:
    root = pdf.Root.get(Name.Outlines)
    if not isinstance(root, pikepdf.Dictionary):
        return None
    last = root.get(Name.Last)
    return last if isinstance(last, pikepdf.Dictionary) else None


def _count_outline_items_after(pdf: pikepdf.Pdf, last_before: pikepdf.Object | None) -> int:
    """How many top-level outline items follow `last_before` (all of them if it is None)."""
    root = pdf.Root.get(Name.Outlines)
    if not isinstance(root, pikepdf.Dictionary):
        return 0
    item = last_before.get(Name.Next) if last_before is not None else root.get(Name.First)
    count = 0
    seen = pikepdf.ObjectSet()
    while isinstance(item, pikepdf.Dictionary) and seen.add(item):
        count += 1
        item = item.get(Name.Next)
    return count


def _truncate_outline(pdf: pikepdf.Pdf, last_kept: pikepdf.Object | None) -> None:
    """Drop the top-level outline items after `last_kept` (all of them if it is None)."""
    root = pdf.Root.get(Name.Outlines)
    if not isinstance(root, pikepdf.Dictionary):
        return
    if last_kept is None:
        del pdf.Root.Outlines
        return
    if Name.Next in last_kept:
        del last_kept.Next
    root.Last = last_kept


def _prepend_cover(
    backup: pikepdf.Pdf, request: BackupRequest, body: _Body, open_files: ExitStack
) -> int:
    """Render the cover for the merged body, insert it in front; return its page count."""
    content = CoverContent(
        project_name=request.project_name,
        project_number=request.project_number,
        generated_at=request.generated_at,
        invoices=tuple(
            CoverInvoiceRow(
                entry=invoice.entry,
                first_body_page=invoice.first_page + 1,
                last_body_page=invoice.first_page + invoice.page_count,
                used_signed_pdf=invoice.used_signed_pdf,
            )
            for invoice in body.invoices
        ),
        not_included=request.not_included,
        left_out=tuple(body.left_out),
        repaired=tuple(body.repaired),
        body_page_count=len(backup.pages),
    )
    cover_bytes, cover_pages = render_cover(content)
    cover = open_files.enter_context(pikepdf.open(io.BytesIO(cover_bytes)))
    for index, page in enumerate(cover.pages):
        backup.pages.insert(index, page)
    return cover_pages


def _write_outline(backup: pikepdf.Pdf, body: _Body, cover_pages: int) -> None:
    """Cover, then per invoice an item with a child per attachment and its own outline below."""
    with backup.open_outline(max_depth=OUTLINE_MAX_DEPTH) as outline:
        carried = list(outline.root)
        expected = sum(a.carried_outline_items for i in body.invoices for a in i.attachments)
        keep_carried = len(carried) == expected  # else the sources' outlines are dropped
        position = 0
        items = [OutlineItem(COVER_BOOKMARK, 0)]
        for invoice in body.invoices:
            invoice_item = OutlineItem(invoice.entry.bookmark_title, cover_pages + invoice.first_page)
            for attachment in invoice.attachments:
                attachment_item = OutlineItem(attachment.filename, cover_pages + attachment.first_page)
                count = attachment.carried_outline_items
                if keep_carried and count:
                    attachment_item.children = carried[position : position + count]
                    attachment_item.is_closed = True
                position += count
                invoice_item.children.append(attachment_item)
            items.append(invoice_item)
        outline.root[:] = items


def _set_document_info(backup: pikepdf.Pdf, request: BackupRequest) -> None:
    backup.docinfo[Name.Title] = (
        f"Subcontractor invoice backup - {request.project_name} - {request.project_number}"
    )
    backup.docinfo[Name.Producer] = "invoice-backups"
    backup.Root.PageMode = Name.UseOutlines


def _invoice_pages(invoice: _MergedInvoice, cover_pages: int) -> InvoicePages:
    first_page = cover_pages + invoice.first_page + 1
    return InvoicePages(
        invoice_id=invoice.entry.invoice_id,
        first_page=first_page,
        last_page=first_page + invoice.page_count - 1,
        used_signed_pdf=invoice.used_signed_pdf,
        merged_attachments=tuple(attachment.filename for attachment in invoice.attachments),
    )


def _source_count(request: BackupRequest) -> int:
    return sum(2 + len(entry.attachments) for entry in request.invoices) + 2


def _raise_open_file_limit(needed: int) -> None:
    """Every source stays open until the write: make sure the process may open that many."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new_soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new_soft, hard))
