"""Compile one subcontractor invoice backup PDF: cover, invoices and attachments, outline, numbers.

`assemble_backup(request)` writes `request.output_path` and returns a `BackupReport`. It is a pure
function of its input files (picklable data in and out, so it runs in a worker process) and never
raises because of one bad attachment or a bad signed PDF: those are left out (or repaired) and
reported. The PDF holds, in order:

1. the cover (`pdf.cover`): every included invoice with its final page range, the total current
   payment due, and everything not included with its reason;
2. per invoice: the signed PDF when there is a usable one, else `render_invoice(entry.sheet)`;
   then each PDF attachment that passed triage (`pdf.attachments`), in order;
3. an outline: "Cover", then one item per invoice (its title ends "— does not tie out" when the
   invoice has tie-out findings) with a child per merged attachment, under which the
   attachment's own bookmarks are nested;
4. "Backup page N of M" on every page (`pdf.stamp`).

Design: each input is parsed once, by qpdf (pikepdf), and triaged as it is opened for the merge
(`pdf.attachments.open_for_merge`: qpdf's recovery repairs damaged files, a Flate limit catches
decompression bombs). Everything that touches the inputs (triage, merge, cover, outline, stamps,
write) runs in one child process under `pdf.inspection`: a memory cap and a deadline per input file,
and a child that dies on a file is replaced by one that leaves that file out ("could not be read
safely"). The child is forked from the calling process when it can be (no interpreter start, no
imports). Stream data is copied as it is, never decoded or recompressed, and it goes from the input
files to the output file when the backup is written, without all of it in memory: the inputs are
opened so that appending their pages does not copy their stream data (`pdf.attachments.open_lazily`;
pikepdf's own `open` turns on qpdf's "immediate copy") and stay open until the write. Each open
input holds a file descriptor; past `_open_file_budget` inputs (the open-file limit, raised to its
hard limit in the child, less a reserve) the rest are opened the copying way and closed straight
after, so only their stream data sits in memory. Peak memory is then about constant (qpdf's objects,
Python, the rendered invoices and cover; `bench/compile.py` measures it at 250 MB and 1 GB).
`Pdf.add_pages_from` keeps form fields (colliding names renamed, values kept), named destinations
(renamed on collision) and each source's own outline; it is used for the sources that have any of
those. Invoices are rendered in forked workers while the attachments are triaged and merged
(`pdf.rendering`).
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pikepdf
from pikepdf import Name, ObjectStreamMode, OutlineItem, StreamDecodeLevel

from pdf.attachments import (
    DAMAGED,
    UNSAFE,
    InputLimits,
    Opened,
    Rejected,
    current_limits,
    open_for_merge,
    precheck_file,
)
from pdf.cover import CoverContent, CoverInvoiceRow, render_cover
from pdf.documents import (
    AttachmentSource,
    BackupReport,
    BackupRequest,
    InvoiceEntry,
    InvoicePages,
    LeftOutAttachment,
)
from pdf.inspection import FileGuard, run_guarded, run_inline
from pdf.rendering import InvoiceRenderer
from pdf.stamp import stamp_page_numbers

PDF_CONTENT_TYPE = "application/pdf"
COVER_BOOKMARK = "Cover"
DOES_NOT_TIE_OUT_SUFFIX = " — does not tie out"
OUTLINE_MAX_DEPTH = 80
REPAIRED_NOTE = "damaged file repaired"
SIGNED_REPAIRED_NOTE = "signed PDF repaired"
_DOCUMENT_LEVEL_KEYS = (Name.AcroForm, Name.Names, Name.Dests, Name.Outlines, Name.OCProperties)


def assemble_backup(request: BackupRequest) -> BackupReport:
    """Write the backup PDF for `request` to `request.output_path` and say what it holds.

    The file appears whole or not at all (written next to it, then renamed).
    """
    output_path = Path(request.output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    jobs, plans = _plan(request)
    limits = current_limits()
    with tempfile.TemporaryDirectory(prefix=".backup-", dir=output_path.parent) as scratch:
        temporary_output = Path(scratch) / "backup.pdf"
        work = _Work(
            request=request,
            jobs=tuple(jobs),
            plans=tuple(plans),
            prechecked=tuple(precheck_file(job.path, job.content_type, limits) for job in jobs),
            output_path=str(temporary_output),
            limits=limits,
        )
        # Without an input to parse (none, or all left out by the checks that need no parser)
        # nothing untrusted is opened: no child needed.
        parses = any(prechecked is None for prechecked in work.prechecked)
        report = (run_guarded if parses else run_inline)(_assemble_guarded, work)
        os.replace(temporary_output, output_path)
    return replace(report, output_path=request.output_path, byte_size=output_path.stat().st_size)


@dataclass(frozen=True)
class _Work:
    """What the guarded child needs (it pickles, for a child that is a fresh interpreter)."""

    request: BackupRequest
    jobs: tuple[_Job, ...]
    plans: tuple[_InvoicePlan, ...]
    prechecked: tuple[Rejected | None, ...]  # the checks that need no parser, per job
    output_path: str
    limits: InputLimits  # read here, applied there: a fresh interpreter has its own settings


def _assemble_guarded(work: _Work, guard: FileGuard) -> BackupReport:
    """In the guarded child: merge everything and write `work.output_path`."""
    request = work.request
    sheets_to_render = [
        entry.sheet if entry.signed_pdf_path is None else None for entry in request.invoices
    ]
    with (
        _Inputs(work, guard) as inputs,
        InvoiceRenderer(sheets_to_render) as renderer,
        pikepdf.new() as backup,
    ):
        body = _merge_body(backup, work.plans, inputs, renderer, request.progress_path)
        renderer.close()  # every invoice is in: free the workers before the memory peak
        _note_progress(request.progress_path, "adding the cover page and bookmarks")
        cover_pages = _prepend_cover(backup, request, body)
        _write_outline(backup, body, cover_pages)
        _note_progress(request.progress_path, "numbering pages")
        stamp_page_numbers(backup)
        _set_document_info(backup, request)
        page_count = len(backup.pages)
        _note_progress(request.progress_path, f"writing the PDF ({page_count} pages)")
        backup.save(
            work.output_path,
            stream_decode_level=StreamDecodeLevel.none,
            compress_streams=False,
            object_stream_mode=ObjectStreamMode.generate,
        )
    return BackupReport(
        output_path=work.output_path,
        page_count=page_count,
        byte_size=os.path.getsize(work.output_path),
        invoices=tuple(_invoice_pages(invoice, cover_pages) for invoice in body.invoices),
        left_out=tuple(body.left_out),
        repaired=tuple(body.repaired),
    )


def _invoice_note(index: int, count: int, entry: InvoiceEntry) -> str:
    """``"invoice 3 of 6: SC-010 Polar Air Mechanical"`` (a progress note a person reads)."""
    who = f"{entry.contract_number} {entry.vendor_name}".strip()
    return f"invoice {index + 1} of {count}: {who}"


def _note_progress(progress_path: str | None, note: str) -> None:
    """Replace the progress file's content with `note` (atomically); never fails the compile."""
    if progress_path is None:
        return
    try:
        partial = f"{progress_path}.partial"
        Path(partial).write_text(note, encoding="utf-8")
        os.replace(partial, progress_path)
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# Triage


@dataclass(frozen=True)
class _InvoicePlan:
    """An invoice and the indexes of its signed PDF (if any) and attachments among the jobs."""

    entry: InvoiceEntry
    signed_job: int | None
    attachment_jobs: tuple[int, ...]


@dataclass(frozen=True)
class _Job:
    """One input file: where it is and what content type its uploader declared."""

    path: str | None
    content_type: str


def _plan(request: BackupRequest) -> tuple[list[_Job], list[_InvoicePlan]]:
    """Every signed PDF and attachment to triage, in merge order, and where each invoice's are."""
    jobs: list[_Job] = []
    plans: list[_InvoicePlan] = []
    for entry in request.invoices:
        signed_job = None
        if entry.signed_pdf_path is not None:
            signed_job = len(jobs)
            jobs.append(_Job(entry.signed_pdf_path, PDF_CONTENT_TYPE))
        first = len(jobs)
        jobs += [_Job(a.path, a.content_type) for a in entry.attachments]
        plans.append(_InvoicePlan(entry, signed_job, tuple(range(first, len(jobs)))))
    return jobs, plans


# ---------------------------------------------------------------------------------------------
# The body: invoices and attachments


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


class _Inputs:
    """Opens the input files for the merge, each inside its guard (deadline, memory cap).

    Used as a context manager: the inputs opened lazily stay open until it exits (after the
    backup is written: their stream data is read then).
    """

    def __init__(self, work: _Work, guard: FileGuard) -> None:
        self._work = work
        self._guard = guard
        self._kept_open: list[pikepdf.Pdf] = []
        self._budget: int | None = None  # set on the first open (in the guarded child)

    def __enter__(self) -> _Inputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        while self._kept_open:
            self._kept_open.pop().close()

    @contextlib.contextmanager
    def opened(self, index: int) -> Iterator[Opened | Rejected]:
        """Input `index` open for the merge, or why it is left out. An input opened lazily
        stays open until this object exits; one opened past the budget is closed after the
        block (appending it copied its stream data)."""
        if index in self._guard.condemned:
            yield Rejected(UNSAFE)
            return
        prechecked = self._work.prechecked[index]
        if prechecked is not None:
            yield prechecked
            return
        job = self._work.jobs[index]
        if self._budget is None:
            self._budget = _open_file_budget()
        lazily = len(self._kept_open) < self._budget
        with self._guard.file(index):
            result = open_for_merge(
                job.path, job.content_type, lazily=lazily, limits=self._work.limits
            )
            try:
                yield result
            finally:
                if isinstance(result, Opened):
                    if lazily:
                        self._kept_open.append(result.pdf)
                    else:
                        result.pdf.close()


_RESERVED_FILE_DESCRIPTORS = 64  # for the output, the render workers, pipes, imports


def _open_file_budget() -> int:
    """How many inputs may stay open until the write: the open-file limit (the soft limit is
    raised to the hard one, in this process only) less a reserve."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 16
    return max(0, soft - _RESERVED_FILE_DESCRIPTORS)


def _merge_body(
    backup: pikepdf.Pdf,
    plans: Sequence[_InvoicePlan],
    inputs: _Inputs,
    renderer: InvoiceRenderer,
    progress_path: str | None,
) -> _Body:
    """Append each invoice and its attachments in order, each input triaged as it is opened."""
    body = _Body()
    for invoice_index, plan in enumerate(plans):
        _note_progress(progress_path, _invoice_note(invoice_index, len(plans), plan.entry))
        first_page = len(backup.pages)
        used_signed_pdf = _append_signed_pdf(backup, plan, inputs, body)
        if not used_signed_pdf:
            rendered = renderer.render(invoice_index, plan.entry.sheet)
            with pikepdf.open(io.BytesIO(rendered)) as pdf:
                _append_pdf(backup, pdf, carry_outline=False)
        merged = []
        for attachment, job in zip(plan.entry.attachments, plan.attachment_jobs, strict=True):
            with inputs.opened(job) as result:
                appended = _append_attachment(backup, plan.entry, attachment, result, body)
            if appended is not None:
                merged.append(appended)
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


def _append_signed_pdf(
    backup: pikepdf.Pdf, plan: _InvoicePlan, inputs: _Inputs, body: _Body
) -> bool:
    """Append the signed PDF if there is a usable one and return True; else record why not."""
    entry = plan.entry
    if entry.signed_pdf_path is None or plan.signed_job is None:
        return False
    filename = os.path.basename(entry.signed_pdf_path)
    with inputs.opened(plan.signed_job) as signed:
        if isinstance(signed, Opened):
            try:
                _append_pdf(backup, signed.pdf, carry_outline=False)
            except MemoryError:
                raise
            except Exception:
                reason = DAMAGED  # qpdf opened it but cannot copy it: the rendered invoice it is
            else:
                if signed.repaired:
                    body.repaired.append(
                        LeftOutAttachment(entry.invoice_id, filename, SIGNED_REPAIRED_NOTE)
                    )
                return True
        else:
            reason = signed.reason
    body.left_out.append(
        LeftOutAttachment(entry.invoice_id, filename, _signed_fallback_reason(reason))
    )
    return False


def _signed_fallback_reason(reason: str) -> str:
    """``"damaged"`` → ``"signed PDF damaged; generated invoice used"``."""
    what = "missing" if reason == "missing file" else reason
    return f"signed PDF {what}; generated invoice used"


def _append_attachment(
    backup: pikepdf.Pdf,
    entry: InvoiceEntry,
    attachment: AttachmentSource,
    result: Opened | Rejected,
    body: _Body,
) -> _MergedAttachment | None:
    """Append one triaged attachment; a failure is recorded and leaves `backup` as it was."""
    if isinstance(result, Rejected):
        body.left_out.append(
            LeftOutAttachment(entry.invoice_id, attachment.filename, result.reason)
        )
        return None
    first_page = len(backup.pages)
    try:
        carried = _append_pdf(backup, result.pdf, carry_outline=True)
    except MemoryError:
        raise
    except Exception:
        body.left_out.append(LeftOutAttachment(entry.invoice_id, attachment.filename, DAMAGED))
        return None
    if result.repaired:
        body.repaired.append(
            LeftOutAttachment(entry.invoice_id, attachment.filename, REPAIRED_NOTE)
        )
    return _MergedAttachment(attachment.filename, first_page, carried)


def _append_pdf(backup: pikepdf.Pdf, pdf: pikepdf.Pdf, *, carry_outline: bool) -> int:
    """Append every page of the open `pdf` to `backup`.

    The pages' objects are copied into `backup` at once; their stream data (raw, nothing decoded)
    too if `pdf` was opened by `pikepdf.open`, else it is read from `pdf` when `backup` is written
    (`pdf.attachments.open_lazily`: keep `pdf` open until then). Returns how many top-level outline
    items of the source were appended to `backup`'s outline (to be nested later). On
    failure the pages and outline items appended so far are removed again.
    """
    first_page = len(backup.pages)
    last_item_before = _last_outline_item(backup)
    try:
        if _has_document_level_parts(pdf):
            backup.add_pages_from(pdf, outlines="preserve" if carry_outline else "ignore")
        else:
            for page in pdf.pages:
                backup.pages.append(page)
    except BaseException:
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


# ---------------------------------------------------------------------------------------------
# Cover, outline, document


def _prepend_cover(backup: pikepdf.Pdf, request: BackupRequest, body: _Body) -> int:
    """Render the cover for the merged body, insert it in front; return its page count."""
    content = CoverContent(
        subcontractor_word=request.subcontractor_word,
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
        data_note=request.data_note,
    )
    cover_bytes, cover_pages = render_cover(content)
    with pikepdf.open(io.BytesIO(cover_bytes)) as cover:
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
            invoice_item = OutlineItem(
                outline_title(invoice.entry), cover_pages + invoice.first_page
            )
            for attachment in invoice.attachments:
                attachment_item = OutlineItem(
                    attachment.filename, cover_pages + attachment.first_page
                )
                count = attachment.carried_outline_items
                if keep_carried and count:
                    attachment_item.children = carried[position : position + count]
                    attachment_item.is_closed = True
                position += count
                invoice_item.children.append(attachment_item)
            items.append(invoice_item)
        outline.root[:] = items


def outline_title(entry: InvoiceEntry) -> str:
    """The invoice's outline title, marked when its numbers do not tie out."""
    suffix = DOES_NOT_TIE_OUT_SUFFIX if entry.findings else ""
    return entry.bookmark_title + suffix


def _set_document_info(backup: pikepdf.Pdf, request: BackupRequest) -> None:
    backup.docinfo[Name.Title] = (
        f"{request.subcontractor_word} invoice backup - {request.project_name} - "
        f"{request.project_number}"
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
