"""`ProcoreFreshness`: the Procore implementation of `commands.freshness.InvoiceFreshness`.

Right before a compile, for the selected invoices of a project synced from Procore:
1. their headers in one request (`sources.procore.read_invoice_headers`);
2. the detail (G703 lines, summary text) of those whose ``source_updated_at`` differs from the
   stored ``detail_updated_at`` (or that were never read), concurrently (the client keeps within
   the rate limit);
3. applied as a partial snapshot (`commands.apply_snapshot`); an invoice Procore no longer has
   is deleted, so the compile leaves it out. The project's ``synced_at`` is kept, so the next
   incremental sync still asks for everything changed since the last sync;
4. the attachments and signed PDFs not stored yet (per the database: a row's ``sha256`` and
   ``byte_size`` under the same file name; the store is not asked) are downloaded, stored
   (`storage.blobs.BlobStore.put_file`) and their sha256 recorded. A file that cannot be fetched
   (too large, too many redirects, URL expired twice) stays "not downloaded" and the compile
   names it on the cover; one too large says so, with its size and the cap
   (`Freshness.attachment_problems`, `Freshness.signed_pdf_problems`).

When Procore cannot be reached (or refuses the project) nothing is written and the answer
carries the project's ``synced_at``: the compile goes on from the last sync and says
"Procore data as of <time>".
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from commands.apply_snapshot import SnapshotRefused, apply_snapshot, stored_project_record
from commands.compile_backups import format_size
from commands.freshness import Freshness
from procore.client import ProcoreClient
from procore.errors import FileTooLarge, ProcoreError
from sources.procore import download_invoice_files, read_invoice, read_invoice_headers
from sources.snapshot import (
    SOURCE_PROCORE,
    Deletions,
    FileRecord,
    InvoiceRecord,
    ProjectSnapshot,
)
from storage.blobs import BlobStore, blob_key
from storage.models import Attachment, Invoice, Project

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 200 * 1024 * 1024  # a larger attachment is left out ("not downloaded")

# A stored file: (sha256, byte size; None for a signed PDF, whose size is not kept); None: not
# stored.
_Blob = tuple[str, int | None] | None
_Stored = tuple[str | None, str | None, int | None]  # a row's (file name, sha256, byte size)


class ProcoreFreshness:
    """Re-reads invoices from Procore before a compile (see the module docstring)."""

    def __init__(
        self, client: ProcoreClient, blobs: BlobStore, max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self._client = client
        self._blobs = blobs
        self._max_file_bytes = max_file_bytes

    async def refresh(self, project_id: int, invoice_ids: Sequence[int]) -> Freshness:
        """Bring ``invoice_ids`` of ``project_id`` up to date (see the module docstring)."""
        project = await Project.get_or_none(id=project_id)
        if project is None or project.source != SOURCE_PROCORE:
            return Freshness()
        stored = {
            row["id"]: row
            for row in await Invoice.filter(project_id=project_id, id__in=list(invoice_ids)).values(
                "id", "source_updated_at", "detail_updated_at"
            )
        }
        if not stored:
            return Freshness()
        try:
            headers = await read_invoice_headers(self._client, project_id, list(stored))
            stale = [
                header.id
                for header in headers
                if stored[header.id]["detail_updated_at"] is None
                or header.source_updated_at is None
                or stored[header.id]["detail_updated_at"] != header.source_updated_at
            ]
            detailed = {
                invoice.id: invoice
                for invoice in await asyncio.gather(
                    *(read_invoice(self._client, project_id, invoice_id) for invoice_id in stale)
                )
            }
        except ProcoreError as error:
            reason = " ".join(str(error).split()) or type(error).__name__
            log.warning(
                "Procore re-read before compile failed; compiling from the last sync: %s", reason
            )
            return Freshness(stale_as_of=project.synced_at, reason=reason)
        invoices = [detailed.get(header.id, header) for header in headers]
        gone = frozenset(stored) - {invoice.id for invoice in invoices}
        problems: dict[tuple[str, int], str] = {}
        invoices, downloaded = await self._with_files(project_id, invoices, problems)
        snapshot = ProjectSnapshot(
            project=stored_project_record(project),
            invoices=tuple(invoices),
            complete=False,
            source=SOURCE_PROCORE,
            as_of=project.synced_at,
            deleted=Deletions(invoice_ids=gone),
        )
        try:
            await apply_snapshot(snapshot)
        except SnapshotRefused as refused:  # an invoice moved to a contract not synced yet
            reason = "; ".join(refused.problems)
            log.warning("Procore re-read before compile not applied: %s", reason)
            return Freshness(stale_as_of=project.synced_at, reason=reason)
        return Freshness(
            refreshed=len(detailed),
            downloaded=downloaded,
            attachment_problems={key: why for (kind, key), why in problems.items() if kind == "a"},
            signed_pdf_problems={key: why for (kind, key), why in problems.items() if kind == "s"},
        )

    async def _with_files(
        self,
        project_id: int,
        invoices: list[InvoiceRecord],
        problems: dict[tuple[str, int], str],
    ) -> tuple[list[InvoiceRecord], int]:
        """The invoices with every file already stored (or just downloaded) carrying its sha256;
        returns them and how many files were downloaded. A file too large is named in
        ``problems`` (``("a", attachment id)`` or ``("s", invoice id)`` → reason)."""
        attachment_ids = [a.id for invoice in invoices for a in invoice.attachments]
        known: dict[int, _Stored] = {
            row["id"]: (row["filename"], row["sha256"], row["byte_size"])
            for row in await Attachment.filter(id__in=attachment_ids).values(
                "id", "filename", "sha256", "byte_size"
            )
        }
        signed_known: dict[int, _Stored] = {
            row["id"]: (row["signed_pdf_filename"], row["signed_pdf_sha256"], None)
            for row in await Invoice.filter(id__in=[i.id for i in invoices]).values(
                "id", "signed_pdf_filename", "signed_pdf_sha256"
            )
        }
        # Only an attachment row stored without its size (none written by this version) costs
        # a store lookup; the others' sizes are the database's (no HEAD per file per compile).
        sizes = await self._stored_sizes(
            {sha256 for _, sha256, size in known.values() if sha256 and size is None}
        )

        def stored_blob(entry: _Stored | None, file: FileRecord, *, signed: bool) -> _Blob:
            if entry is None or entry[0] != file.filename or not entry[1]:
                return None
            if signed:  # no size column: the writer keeps only the signed PDF's sha256
                return entry[1], None
            size = entry[2] if entry[2] is not None else sizes.get(entry[1])
            return None if size is None else (entry[1], size)

        with tempfile.TemporaryDirectory(prefix="procore-files-") as scratch:
            results = await asyncio.gather(
                *(
                    self._invoice_files(
                        project_id,
                        invoice,
                        {
                            a.id: stored_blob(known.get(a.id), a.file, signed=False)
                            for a in invoice.attachments
                        },
                        stored_blob(signed_known.get(invoice.id), invoice.signed_pdf, signed=True)
                        if invoice.signed_pdf is not None
                        else None,
                        Path(scratch),
                        problems,
                    )
                    for invoice in invoices
                )
            )
        return [invoice for invoice, _ in results], sum(count for _, count in results)

    async def _invoice_files(
        self,
        project_id: int,
        invoice: InvoiceRecord,
        attachment_blobs: dict[int, _Blob],
        signed_blob: _Blob,
        scratch: Path,
        problems: dict[tuple[str, int], str],
    ) -> tuple[InvoiceRecord, int]:
        """``invoice`` with its files' sha256: the stored ones, else downloaded one by one (a
        file that cannot be fetched keeps sha256 None)."""
        downloaded = 0
        attachments = []
        for attachment in invoice.attachments:
            blob = attachment_blobs.get(attachment.id)
            if blob is None:
                blob = await self._fetch(
                    project_id,
                    replace(invoice, attachments=(attachment,), signed_pdf=None),
                    scratch,
                    problems,
                )
                downloaded += blob is not None
            attachments.append(replace(attachment, file=_stored(attachment.file, blob)))
        signed = invoice.signed_pdf
        if signed is not None:
            blob = signed_blob
            if blob is None:
                blob = await self._fetch(
                    project_id, replace(invoice, attachments=()), scratch, problems
                )
                downloaded += blob is not None
            signed = _stored(signed, blob)
        return replace(invoice, attachments=tuple(attachments), signed_pdf=signed), downloaded

    async def _stored_sizes(self, hashes: set[str]) -> dict[str, int]:
        """The size of each of these blobs the store holds (a few at a time): only for rows
        that lack their ``byte_size``."""
        slots = asyncio.Semaphore(8)

        async def size(sha256: str) -> int | None:
            async with slots:
                return await self._blobs.object_size(blob_key(sha256))

        found = await asyncio.gather(*(size(sha256) for sha256 in hashes))
        return {sha: n for sha, n in zip(hashes, found, strict=True) if n is not None}

    async def _fetch(
        self,
        project_id: int,
        only: InvoiceRecord,
        scratch: Path,
        problems: dict[tuple[str, int], str],
    ) -> _Blob:
        """Download the one file of ``only`` and stream it into the blob store; its sha256
        and size, or None (a file too large is named in ``problems``, see
        `too_large_reason`)."""
        try:
            files = await download_invoice_files(
                self._client, project_id, only, scratch, self._max_file_bytes
            )
        except ProcoreError as error:
            if isinstance(error, FileTooLarge):
                key = ("a", only.attachments[0].id) if only.attachments else ("s", only.id)
                problems[key] = too_large_reason(error)
            log.warning(
                "invoice %s: a file was not downloaded from Procore: %s",
                only.id,
                " ".join(str(error).split()),
            )
            return None
        got = next(iter(files.attachments.values()), None) or files.signed_pdf
        if got is None:
            return None
        try:
            size = (await asyncio.to_thread(got.path.stat)).st_size
            return await self._blobs.put_file(got.path), size
        finally:
            got.path.unlink(missing_ok=True)


def too_large_reason(error: FileTooLarge) -> str:
    """Why a file was left out, for the cover and the replies: ``too large: 312.0 MB, over the
    200.0 MB cap`` (``too large: over the 200.0 MB cap`` when Procore did not say its size)."""
    cap = format_size(error.max_bytes)
    if error.byte_size is None:
        return f"too large: over the {cap} cap"
    return f"too large: {format_size(error.byte_size)}, over the {cap} cap"


def _stored(file: FileRecord, blob: _Blob) -> FileRecord:
    """``file`` with the sha256 and size of its stored blob (unchanged when not stored)."""
    if blob is None:
        return file
    return replace(file, sha256=blob[0], byte_size=blob[1])
