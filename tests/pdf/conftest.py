"""PDF-making helpers for the pdf/ tests: every test PDF is generated here, in code.

`pdfs` (a `PdfFactory` writing under the test's tmp_path) makes plain PDFs with known text, the
bad-input matrix (encrypted, truncated, garbage, renamed PNG, empty, bomb) and special cases
(filled form, rotated page, own outline, named destinations, shared content streams, a big
scanned page). `pdfs.sheet` / `pdfs.entry` build the plain-data invoices `assemble_backup`
consumes.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Sequence
from decimal import Decimal
from functools import partial
from pathlib import Path

import pikepdf
import pytest
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen.canvas import Canvas

from pdf.documents import (
    AttachmentSource,
    InvoiceEntry,
    InvoiceSheet,
)
from tests.invoice_sheets import uniform_line, uniform_sheet

PDF = "application/pdf"


def make_sheet(invoice_number: str, application_number: int, line_count: int = 3) -> InvoiceSheet:
    """A small, consistent G702/G703 sheet."""
    line = partial(
        uniform_line,
        scheduled=Decimal("10000.00"),
        previous=Decimal("2000.00"),
        this_period=Decimal("1000.00"),
        stored=Decimal("0"),
    )
    lines = tuple(line(index) for index in range(1, line_count + 1))
    return uniform_sheet(invoice_number, application_number, lines, Decimal("1800.00") * line_count)


def make_entry(
    invoice_id: int,
    attachments: Sequence[AttachmentSource] = (),
    *,
    contract_number: str = "SC-1",
    application_number: int = 1,
    vendor_name: str = "Concrete Co",
    signed_pdf_path: str | None = None,
    current_payment_due: Decimal = Decimal("2700.00"),
) -> InvoiceEntry:
    """An invoice of a backup request with the given attachments."""
    invoice_number = f"INV-{invoice_id}"
    return InvoiceEntry(
        invoice_id=invoice_id,
        contract_number=contract_number,
        contract_title="Concrete works",
        vendor_name=vendor_name,
        application_number=application_number,
        invoice_number=invoice_number,
        period_label="Oct 1–31, 2026",
        status_label="Approved",
        current_payment_due=current_payment_due,
        sheet=make_sheet(invoice_number, application_number),
        signed_pdf_path=signed_pdf_path,
        attachments=tuple(attachments),
    )


def attachment_text(number: int, page: int) -> str:
    """The marker text on page `page` of test attachment `number`."""
    return f"ATTACHMENT {number} PAGE {page}"


def text_pdf_bytes(
    page_texts: Sequence[str], pagesize: tuple[float, float] = letter, compress: bool = True
) -> bytes:
    """A PDF with one page per text, the text drawn near the top left."""
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=pagesize, pageCompression=1 if compress else 0)
    for text in page_texts:
        canvas.setFont("Helvetica", 14)
        canvas.drawString(72, pagesize[1] - 100, text)
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def png_bytes() -> bytes:
    """A tiny valid PNG (1×1, grey)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


class PdfFactory:
    """Writes test input files under one directory and returns AttachmentSource/paths.

    Tests reach every helper through the `pdfs` fixture (a module named conftest cannot be
    imported reliably when there are several).
    """

    text = staticmethod(attachment_text)
    text_pdf = staticmethod(text_pdf_bytes)
    png = staticmethod(png_bytes)
    sheet = staticmethod(make_sheet)
    entry = staticmethod(make_entry)

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: bytes) -> str:
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    def source(self, name: str, data: bytes, content_type: str = PDF) -> AttachmentSource:
        return AttachmentSource(
            filename=name, content_type=content_type, path=self.write(name, data)
        )

    def attachment(self, number: int, pages: int = 1) -> AttachmentSource:
        """A plain PDF whose page k reads "ATTACHMENT {number} PAGE {k}"."""
        texts = [attachment_text(number, page) for page in range(1, pages + 1)]
        return self.source(f"attachment-{number}.pdf", text_pdf_bytes(texts))

    def encrypted(self, number: int, algorithm: str, user_password: str = "") -> bytes:
        reader = PdfReader(io.BytesIO(text_pdf_bytes([attachment_text(number, 1)])))
        writer = PdfWriter(clone_from=reader)
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm=algorithm)
        buffer = io.BytesIO()
        writer.write(buffer)
        return buffer.getvalue()

    def truncated(self, number: int) -> bytes:
        """An uncompressed PDF cut inside its xref table: objects intact, no trailer."""
        data = text_pdf_bytes([attachment_text(number, 1)], compress=False)
        return data[: data.rindex(b"\nxref\n") + 30]

    def bad_xref(self, number: int) -> bytes:
        """A PDF whose xref table entries are replaced by garbage."""
        data = text_pdf_bytes([attachment_text(number, 1)], compress=False)
        start = data.rindex(b"\nxref\n") + 1
        end = data.index(b"trailer", start)
        garbage = b"xref\n0 999999\n" + b"zz 9999999999 q\n" * 8
        return data[:start] + garbage + data[end:]

    def garbage(self) -> bytes:
        return os.urandom(4096)

    def header_then_garbage(self) -> bytes:
        return b"%PDF-1.7\n" + bytes(range(256)) * 16

    def form(self, value: str, field_name: str = "amount") -> bytes:
        """A one-page PDF with a filled text field."""
        buffer = io.BytesIO()
        canvas = Canvas(buffer, pagesize=letter)
        canvas.drawString(72, 700, f"FORM {value}")
        canvas.acroForm.textfield(name=field_name, value=value, x=72, y=600, width=200, height=20)
        canvas.showPage()
        canvas.save()
        return buffer.getvalue()

    def rotated(self, number: int, rotation: int = 90) -> bytes:
        """A one-page portrait PDF with /Rotate `rotation`."""
        with pikepdf.open(io.BytesIO(text_pdf_bytes([attachment_text(number, 1)]))) as pdf:
            pdf.pages[0].rotate(rotation, relative=False)
            buffer = io.BytesIO()
            pdf.save(buffer)
            return buffer.getvalue()

    def shared_contents(self, number: int) -> bytes:
        """Two pages that share one content stream (both read "ATTACHMENT n PAGE 1")."""
        data = text_pdf_bytes([attachment_text(number, 1), attachment_text(number, 2)])
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pdf.pages[1].obj.Contents = pdf.pages[0].obj.Contents
            buffer = io.BytesIO()
            pdf.save(buffer)
            return buffer.getvalue()

    def with_outline(self, number: int, titles: Sequence[str]) -> bytes:
        """One page per title, with an outline item per page carrying that title."""
        data = text_pdf_bytes([attachment_text(number, k) for k in range(1, len(titles) + 1)])
        with pikepdf.open(io.BytesIO(data)) as pdf:
            with pdf.open_outline() as outline:
                outline.root.extend(
                    pikepdf.OutlineItem(title, index) for index, title in enumerate(titles)
                )
            buffer = io.BytesIO()
            pdf.save(buffer)
            return buffer.getvalue()

    def linked(self, number: int, destination: str = "section") -> bytes:
        """Two pages; a link on page 1 goes to the named destination `destination` on page 2."""
        data = text_pdf_bytes([attachment_text(number, 1), attachment_text(number, 2)])
        with pikepdf.open(io.BytesIO(data)) as pdf:
            target = pdf.pages[1].obj
            names = pikepdf.NameTree.new(pdf)
            names[destination] = pikepdf.Array([target, pikepdf.Name.Fit])
            pdf.Root.Names = pdf.make_indirect(pikepdf.Dictionary(Dests=names.obj))
            link = pikepdf.Dictionary(
                Type=pikepdf.Name.Annot,
                Subtype=pikepdf.Name.Link,
                Rect=pikepdf.Array([72, 600, 300, 640]),
                Border=pikepdf.Array([0, 0, 0]),
                Dest=pikepdf.String(destination),
            )
            pdf.pages[0].obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(link)]))
            buffer = io.BytesIO()
            pdf.save(buffer)
            return buffer.getvalue()

    def big_scanned_page(self, image_bytes: int = 82_000_000) -> bytes:
        """One page showing one uncompressed greyscale image of `image_bytes` bytes."""
        width = 10_000
        height = image_bytes // width
        pdf = pikepdf.new()
        image = pikepdf.Stream(pdf, bytes(width * height))
        image.Type = pikepdf.Name.XObject
        image.Subtype = pikepdf.Name.Image
        image.Width = width
        image.Height = height
        image.ColorSpace = pikepdf.Name.DeviceGray
        image.BitsPerComponent = 8
        page = pdf.add_blank_page(page_size=letter)
        page.obj.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Scan=image))
        page.obj.Contents = pdf.make_stream(b"q 612 0 0 792 0 0 cm /Scan Do Q")
        buffer = io.BytesIO()
        pdf.save(buffer, compress_streams=False)
        return buffer.getvalue()

    def slow_to_parse(self, padding_bytes: int = 40_000_000) -> bytes:
        """A valid PDF whose page holds a huge literal string: pure-Python parsing takes seconds."""
        data = text_pdf_bytes(["SLOW"])
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pdf.pages[0].obj.Padding = pikepdf.String(b"x" * padding_bytes)
            buffer = io.BytesIO()
            pdf.save(buffer, object_stream_mode=pikepdf.ObjectStreamMode.disable)
            return buffer.getvalue()

    def object_stream_bomb(self, inflated_bytes: int = 100_000_000) -> bytes:
        """A valid PDF whose page object sits in an object stream inflating to `inflated_bytes`."""
        data = text_pdf_bytes(["BOMB"])
        with pikepdf.open(io.BytesIO(data)) as pdf:
            pdf.pages[0].obj.Padding = pikepdf.String(b" " * inflated_bytes)
            buffer = io.BytesIO()
            pdf.save(buffer, object_stream_mode=pikepdf.ObjectStreamMode.generate)
            return buffer.getvalue()


@pytest.fixture
def pdfs(tmp_path: Path) -> PdfFactory:
    """A factory of test PDFs under tmp_path/inputs."""
    return PdfFactory(tmp_path / "inputs")
