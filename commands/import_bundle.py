"""Import a project bundle (a folder or a .zip of it; see domain.md "The bundle") into the database.

Contract of `import_bundle`:

* **All or nothing.** Phase 1 reads and validates the whole bundle without touching the database
  (types, ISO dates, money, statuses, access levels, duplicate ids, commitment references, files
  present and inside the bundle). Any problem raises `BundleError`, whose message names the file,
  the record and the field (``requisitions.json[3].period_id: not an integer``), one line per
  problem. Phase 2 copies the files into the blob store, then `commands.apply_snapshot` writes
  every row in one transaction; if anything fails there, the transaction rolls back and the
  database is as before. Blobs stored before a failure stay: they are content-addressed, so
  they are harmless and are reused by the next attempt.
* **Upsert by Procore id** (project users by ``(project, user id)``). A row is written only if a
  value differs, so importing the same bundle twice changes nothing, not even ``updated_at``.
* **A bundle is a complete snapshot of its project** (`sources.bundle.read_bundle`). Billing
  periods, commitments, users, invoices and attachments of that project that the bundle no
  longer holds are deleted. Keeping them would be worse: a user removed from the project (or
  whose access was lowered to nothing) would keep the rights they had, and invoices deleted in
  Procore would still be offered for compiling. Past `Backup` rows keep their ``invoice_ids``
  as plain JSON, so they are unaffected. Blobs are never deleted here (another invoice or
  project may share them); collecting unused blobs is a separate maintenance task. Because
  absence means deletion, all five JSON files are required: a missing ``requisitions.json`` is
  an error, not "no invoices".
* **Project settings** (``settings.invoice_contacts_may_compile``, ``settings.dictionary``) are
  written only when the bundle gives them; otherwise what the project's admins chose is kept.
* An id that already belongs to another project is refused (`BundleError`): one bundle cannot
  take over another project's rows.
* ``period_id`` may name a billing period the bundle lacks: that is the compile step's rule, not
  an import error.

Bundle rules beyond the Procore fields: at most one billing period is ``open``; a period's
``end_date`` is not before its ``start_date``; a file ``url`` is a relative path inside the bundle
(no ``..``, not absolute, no symlink out of it); money is a string such as ``"1,234.50"``
(``$`` and a leading ``-`` allowed, ``%`` for percentages) or a JSON number, never NaN.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path

from commands.apply_snapshot import SnapshotRefused, SnapshotReport, apply_snapshot
from sources.bundle import BundleError, read_bundle, unpack_bundle
from sources.snapshot import FileRecord, InvoiceRecord, ProjectSnapshot
from storage.blobs import BlobStore

__all__ = ["BundleError", "import_bundle"]


async def import_bundle(source: Path, blobs: BlobStore) -> SnapshotReport:
    """Validate the bundle at ``source`` (folder or .zip), store its files in ``blobs`` and
    apply its snapshot in one transaction. Raises `BundleError` and writes nothing on a bad
    bundle (an id of another project included).
    """
    source = Path(source)
    with tempfile.TemporaryDirectory(prefix="bundle-") as scratch:
        root = await asyncio.to_thread(unpack_bundle, source, Path(scratch))
        snapshot = await asyncio.to_thread(read_bundle, root)
        stored = await _store_files(snapshot, blobs)
    try:
        return await apply_snapshot(stored)
    except SnapshotRefused as refused:
        raise BundleError(refused.problems) from refused


async def _store_files(snapshot: ProjectSnapshot, blobs: BlobStore) -> ProjectSnapshot:
    """Copy every bundle file into ``blobs`` (once per content, streamed); returns the snapshot
    with its files as stored (``sha256`` and ``byte_size`` set)."""
    stored: dict[Path, FileRecord] = {}
    for invoice in snapshot.invoices:
        files = [attachment.file for attachment in invoice.attachments]
        if invoice.signed_pdf is not None:
            files.append(invoice.signed_pdf)
        for file in files:
            if file.path is not None and file.path not in stored:
                sha256 = await blobs.put_file(file.path)
                byte_size = (await asyncio.to_thread(file.path.stat)).st_size
                stored[file.path] = FileRecord(
                    filename=file.filename, path=file.path, sha256=sha256, byte_size=byte_size
                )

    def store(file: FileRecord) -> FileRecord:
        if file.path is None:
            return file
        return replace(file, sha256=stored[file.path].sha256, byte_size=stored[file.path].byte_size)

    def stored_invoice(invoice: InvoiceRecord) -> InvoiceRecord:
        return replace(
            invoice,
            attachments=tuple(
                replace(attachment, file=store(attachment.file))
                for attachment in invoice.attachments
            ),
            signed_pdf=store(invoice.signed_pdf) if invoice.signed_pdf is not None else None,
        )

    return replace(snapshot, invoices=tuple(stored_invoice(i) for i in snapshot.invoices))
