"""A backup that takes seconds to compile, for tests that stop a process in the middle of it:
one many-page PDF attached many times to a few demo invoices (each copy is triaged in a child
process, merged and page-stamped: real work, nothing mocked)."""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence

import pikepdf

from storage.blobs import BlobStore
from storage.models import Attachment

BIG_ATTACHMENT_PAGES = 400
FIRST_ATTACHMENT_ID = 880_000


@functools.cache
def many_page_pdf(pages: int) -> bytes:
    """A valid PDF of ``pages`` pages, each with a little text (made once per session)."""
    with pikepdf.new() as pdf:
        font = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
            )
        )
        for number in range(pages):
            content = f"BT /F1 24 Tf 72 720 Td (Scanned page {number + 1}) Tj ET".encode()
            page = pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, 612, 792],
                Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                Contents=pdf.make_stream(content),
            )
            pdf.pages.append(pikepdf.Page(page))
        buffer = io.BytesIO()
        pdf.save(buffer)
        return buffer.getvalue()


async def attach_big_files(
    blobs: BlobStore,
    invoice_ids: Sequence[int],
    copies: int,
    pages: int = BIG_ATTACHMENT_PAGES,
) -> None:
    """Attach ``copies`` copies of a ``pages``-page PDF to each of ``invoice_ids``."""
    data = many_page_pdf(pages)
    sha256 = await blobs.put_bytes(data)
    next_id = FIRST_ATTACHMENT_ID
    for invoice_id in invoice_ids:
        for position in range(copies):
            await Attachment.create(
                id=next_id,
                invoice_id=invoice_id,
                position=100 + position,
                filename=f"scan-{position + 1}.pdf",
                content_type="application/pdf",
                sha256=sha256,
                byte_size=len(data),
            )
            next_id += 1
