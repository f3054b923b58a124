"""Compiling with the files in an object store, on both implementations and both databases: the
PDF goes into the store, and an object missing from the store leaves its attachment out (named)
while the rest of the backup compiles."""

from __future__ import annotations

import io
from pathlib import Path

from demo_requesters import ADMIN
from pypdf import PdfReader

from commands.compile_backups import SIGNED_NOT_STORED, compile_backup
from commands.import_bundle import import_bundle
from storage.blobs import BlobStore, LocalBlobStore, S3BlobStore, blob_key
from storage.models import Attachment, Backup, Invoice


async def pdf_from_store(store: BlobStore, key: str) -> PdfReader:
    return PdfReader(io.BytesIO(b"".join([chunk async for chunk in store.read_chunks(key)])))


async def test_the_compiled_pdf_is_stored_and_nothing_is_left_aside(
    database: str, blob_store: BlobStore, demo_bundle: Path
) -> None:
    await import_bundle(demo_bundle, blob_store)
    result = await compile_backup(ADMIN, 1001, [9001, 9002, 9011], blobs=blob_store)

    assert result.status == "succeeded" and result.file_key is not None
    backup = await Backup.get(id=result.backup_id)
    assert backup.file_path == result.file_key and result.file_key.startswith("backups/")
    reader = await pdf_from_store(blob_store, result.file_key)
    assert len(reader.pages) == result.page_count
    assert await blob_store.object_size(result.file_key) == result.byte_size
    if isinstance(blob_store, S3BlobStore):
        assert result.pdf_path is None  # streamed up, no local copy kept
        assert not list((blob_store.cache.root / "compiles").rglob("*.pdf"))
    else:
        assert isinstance(blob_store, LocalBlobStore)
        assert result.pdf_path == blob_store.root / result.file_key


async def test_an_object_missing_from_the_store_is_named_and_the_rest_compiles(
    database: str, blob_store: BlobStore, demo_bundle: Path
) -> None:
    await import_bundle(demo_bundle, blob_store)
    attachments = await Attachment.filter(invoice_id=9001).order_by("position")
    assert len(attachments) >= 2
    gone = attachments[0]
    await blob_store.delete(blob_key(gone.sha256))

    result = await compile_backup(ADMIN, 1001, [9001, 9002], blobs=blob_store)

    assert result.status == "succeeded" and result.invoice_count == 2
    [(invoice, filename, reason)] = [
        note for note in result.left_out_attachments if note.filename == gone.filename
    ]
    assert invoice.startswith("SC-") and "Application #" in invoice  # names the invoice
    assert reason == "missing file"
    assert f"{filename} (missing file)" in result.summary_text()
    reader = await pdf_from_store(blob_store, str(result.file_key))
    assert gone.filename in (reader.pages[0].extract_text() or "")  # listed on the cover


async def test_a_signed_pdf_missing_from_the_store_is_named_and_rendered_instead(
    database: str, blob_store: BlobStore, demo_bundle: Path
) -> None:
    await import_bundle(demo_bundle, blob_store)
    signed = await Invoice.filter(project_id=1001, signed_pdf_sha256__not_isnull=True).first()
    assert signed is not None and signed.signed_pdf_sha256 is not None
    await blob_store.delete(blob_key(signed.signed_pdf_sha256))

    result = await compile_backup(ADMIN, 1001, [signed.id], blobs=blob_store)

    assert result.status == "succeeded" and result.invoice_count == 1
    [note] = [n for n in result.left_out_attachments if n.filename == signed.signed_pdf_filename]
    assert note.reason == SIGNED_NOT_STORED and note.invoice_label.startswith("SC-")
    backup = await Backup.get(id=result.backup_id)
    assert any(signed.signed_pdf_filename in warning for warning in backup.warnings)
    reader = await pdf_from_store(blob_store, str(result.file_key))
    cover = reader.pages[0].extract_text() or ""
    assert str(signed.signed_pdf_filename) in cover and "missing from the file store" in cover
    assert len(reader.pages) == result.page_count
