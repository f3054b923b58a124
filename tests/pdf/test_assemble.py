"""Tests of `assemble_backup` and `backup_file_name`: pages, order, outline, numbers, triage, cover.

Every input PDF is generated in code (`pdfs` fixture, tests/pdf/conftest.py). Pages are
identified by their extracted text: attachments read "ATTACHMENT n PAGE k", invoice pages are
compared with the text of `render_invoice(sheet)` itself.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pikepdf
import pytest
from pypdf import PdfReader

from pdf import assemble, attachments, inspection
from pdf.assemble import assemble_backup
from pdf.documents import (
    AttachmentSource,
    BackupReport,
    BackupRequest,
    CoverNote,
    InvoiceEntry,
    LeftOutAttachment,
)
from pdf.formatting import backup_file_name, format_money
from pdf.render_invoice import render_invoice
from pdf.rendering import InvoiceRenderer

if TYPE_CHECKING:
    from conftest import PdfFactory  # the `pdfs` fixture of tests/pdf/conftest.py

GENERATED_AT = datetime(2026, 11, 2, 14, 5, tzinfo=ZoneInfo("America/Chicago"))
COVER_TITLE = "Subcontractor invoice backup"


# ---------------------------------------------------------------------------------------------
# Helpers


def squeeze(text: str) -> str:
    """Whitespace runs (line breaks from wrapping cells) become one space."""
    return " ".join(text.split())


def compile_backup(
    tmp_path: Path, invoices: Sequence[InvoiceEntry], not_included: Sequence[CoverNote] = ()
) -> tuple[BackupReport, PdfReader]:
    request = BackupRequest(
        project_name="Harbor Tower",
        project_number="HT-100",
        generated_at=GENERATED_AT,
        invoices=tuple(invoices),
        output_path=str(tmp_path / "out" / "backup.pdf"),
        not_included=tuple(not_included),
    )
    report = assemble_backup(request)
    return report, PdfReader(report.output_path)


def page_texts(reader: PdfReader) -> list[str]:
    return [page.extract_text() for page in reader.pages]


def rendered_page_texts(entry: InvoiceEntry) -> list[str]:
    """The text of each page of the invoice's rendered PDF, as it appears in the backup."""
    reader = PdfReader(io.BytesIO(render_invoice(entry.sheet)))
    return [page.extract_text().strip() for page in reader.pages]


def first_page_holding(texts: Sequence[str], wanted: str) -> int:
    """The 1-based number of the first page whose text holds `wanted`."""
    return next(number for number, text in enumerate(texts, start=1) if wanted in text)


@dataclass(frozen=True)
class Bookmark:
    title: str
    page: int  # 1-based
    children: tuple[Bookmark, ...]


def outline_tree(reader: PdfReader) -> list[Bookmark]:
    def build(items: list[Any]) -> list[Bookmark]:
        bookmarks: list[Bookmark] = []
        for item in items:
            if isinstance(item, list):
                last = bookmarks.pop()
                bookmarks.append(replace(last, children=tuple(build(item))))
            else:
                page = reader.get_destination_page_number(item) + 1
                bookmarks.append(Bookmark(item.title, page, ()))
        return bookmarks

    return build(reader.outline)


def assert_pages_match(texts: Sequence[str], expected: Sequence[str]) -> None:
    """Each backup page holds the expected text (an invoice page's text or an attachment marker)."""
    assert len(texts) == len(expected)
    for number, (text, wanted) in enumerate(zip(texts, expected, strict=True), start=1):
        assert wanted in text, f"page {number}: {wanted[:60]!r} not in {text[:120]!r}"


# ---------------------------------------------------------------------------------------------
# File name


def test_backup_file_name_format() -> None:
    name = backup_file_name("Harbor Tower", "HT-100", datetime(2026, 11, 2, 9, 5))
    assert name == "Subcontractor invoice backup - Harbor Tower - HT-100 - 2026-11-02 - 0905.pdf"


def test_backup_file_name_replaces_characters_illegal_in_file_names() -> None:
    name = backup_file_name(
        'A/B\\C:D*E?F"G<H>I|J\tK\x00L\x7f', "N:1/2", datetime(2026, 1, 31, 23, 59)
    )
    assert name == (
        "Subcontractor invoice backup - A-B-C-D-E-F-G-H-I-J-K-L- - N-1-2 - 2026-01-31 - 2359.pdf"
    )


def test_backup_file_name_keeps_accents_and_dashes() -> None:
    name = backup_file_name("Café – Tower", "Nº 7", datetime(2026, 3, 4, 0, 0))
    assert name == "Subcontractor invoice backup - Café – Tower - Nº 7 - 2026-03-04 - 0000.pdf"


# ---------------------------------------------------------------------------------------------
# Pages, order, report


def two_invoices(pdfs: PdfFactory) -> list[InvoiceEntry]:
    first = pdfs.entry(1, [pdfs.attachment(1, pages=2), pdfs.attachment(2)], contract_number="SC-2")
    second = pdfs.entry(2, [pdfs.attachment(3, pages=3)], contract_number="SC-10")
    return [first, second]


def test_page_count_and_order(tmp_path: Path, pdfs: PdfFactory) -> None:
    first, second = two_invoices(pdfs)
    report, reader = compile_backup(tmp_path, [first, second])

    texts = page_texts(reader)
    covers = first_page_holding(texts, rendered_page_texts(first)[0]) - 1
    assert covers == 1
    expected = (
        [COVER_TITLE]
        + rendered_page_texts(first)
        + [pdfs.text(1, 1), pdfs.text(1, 2), pdfs.text(2, 1)]
        + rendered_page_texts(second)
        + [pdfs.text(3, 1), pdfs.text(3, 2), pdfs.text(3, 3)]
    )
    assert len(reader.pages) == covers + len(rendered_page_texts(first)) + 3 + (
        len(rendered_page_texts(second)) + 3
    )
    assert_pages_match(texts, expected)
    assert report.page_count == len(reader.pages)
    assert report.left_out == () and report.repaired == ()


def test_report_gives_each_invoice_its_pages(tmp_path: Path, pdfs: PdfFactory) -> None:
    first, second = two_invoices(pdfs)
    report, reader = compile_backup(tmp_path, [first, second])

    first_pages = len(rendered_page_texts(first)) + 3
    second_pages = len(rendered_page_texts(second)) + 3
    assert [(p.invoice_id, p.first_page, p.last_page) for p in report.invoices] == [
        (1, 2, 1 + first_pages),
        (2, 2 + first_pages, 1 + first_pages + second_pages),
    ]
    assert report.invoices[0].merged_attachments == ("attachment-1.pdf", "attachment-2.pdf")
    assert report.invoices[1].merged_attachments == ("attachment-3.pdf",)
    assert not any(p.used_signed_pdf for p in report.invoices)
    assert report.byte_size == Path(report.output_path).stat().st_size
    assert report.output_path == str(tmp_path / "out" / "backup.pdf")
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "backup.pdf"]


def test_outline_has_cover_then_invoices_with_a_child_per_attachment(
    tmp_path: Path, pdfs: PdfFactory
) -> None:
    first, second = two_invoices(pdfs)
    report, reader = compile_backup(tmp_path, [first, second])

    first_start = report.invoices[0].first_page
    second_start = report.invoices[1].first_page
    first_rendered = len(rendered_page_texts(first))
    second_rendered = len(rendered_page_texts(second))
    assert outline_tree(reader) == [
        Bookmark("Cover", 1, ()),
        Bookmark(
            first.bookmark_title,
            first_start,
            (
                Bookmark("attachment-1.pdf", first_start + first_rendered, ()),
                Bookmark("attachment-2.pdf", first_start + first_rendered + 2, ()),
            ),
        ),
        Bookmark(
            second.bookmark_title,
            second_start,
            (Bookmark("attachment-3.pdf", second_start + second_rendered, ()),),
        ),
    ]
    texts = page_texts(reader)
    assert pdfs.text(2, 1) in texts[first_start + first_rendered + 2 - 1]


def test_attachment_outline_is_nested_under_its_bookmark(tmp_path: Path, pdfs: PdfFactory) -> None:
    own_outline = pdfs.source("manual.pdf", pdfs.with_outline(4, ["Intro", "Details", "Appendix"]))
    entry = pdfs.entry(1, [pdfs.attachment(1), own_outline, pdfs.attachment(2)])
    report, reader = compile_backup(tmp_path, [entry])

    start = report.invoices[0].first_page + len(rendered_page_texts(entry))
    invoice = outline_tree(reader)[1]
    assert [child.title for child in invoice.children] == [
        "attachment-1.pdf",
        "manual.pdf",
        "attachment-2.pdf",
    ]
    manual = invoice.children[1]
    assert manual.page == start + 1
    assert manual.children == (
        Bookmark("Intro", start + 1, ()),
        Bookmark("Details", start + 2, ()),
        Bookmark("Appendix", start + 3, ()),
    )
    assert invoice.children[2].page == start + 4


def test_empty_request_gives_a_cover_only(tmp_path: Path) -> None:
    report, reader = compile_backup(tmp_path, [])
    assert report.page_count == 1 and report.invoices == ()
    assert "No invoice could be included." in reader.pages[0].extract_text()
    assert [b.title for b in outline_tree(reader)] == ["Cover"]


# ---------------------------------------------------------------------------------------------
# Signed PDFs


def test_signed_pdf_replaces_the_rendered_invoice(tmp_path: Path, pdfs: PdfFactory) -> None:
    signed = pdfs.write(
        "signed-1.pdf", pdfs.text_pdf(["SIGNED INVOICE 1 PAGE 1", "SIGNED 1 PAGE 2"])
    )
    first = pdfs.entry(1, [pdfs.attachment(1)], signed_pdf_path=signed)
    second = pdfs.entry(2, [pdfs.attachment(2)], application_number=2)
    report, reader = compile_backup(tmp_path, [first, second])

    expected = (
        [COVER_TITLE, "SIGNED INVOICE 1 PAGE 1", "SIGNED 1 PAGE 2", pdfs.text(1, 1)]
        + rendered_page_texts(second)
        + [pdfs.text(2, 1)]
    )
    texts = page_texts(reader)
    assert_pages_match(texts, expected)
    first_invoice_page = rendered_page_texts(first)[0]
    assert not any(first_invoice_page in text for text in texts)
    assert [p.used_signed_pdf for p in report.invoices] == [True, False]
    assert report.left_out == ()
    assert "Signed PDF" in squeeze(texts[0])


@pytest.mark.parametrize(
    ("signed_bytes", "reason"),
    [
        pytest.param(b"%PDF-1.7\n" + bytes(range(256)) * 8, "signed PDF damaged", id="damaged"),
        pytest.param(None, "signed PDF missing", id="missing"),
        pytest.param(b"", "signed PDF empty file", id="empty"),
        pytest.param("password", "signed PDF password-protected", id="password"),
    ],
)
def test_unusable_signed_pdf_falls_back_to_the_rendered_invoice(
    tmp_path: Path, pdfs: PdfFactory, signed_bytes: bytes | str | None, reason: str
) -> None:
    if signed_bytes is None:
        signed = str(pdfs.directory / "gone.pdf")
    elif signed_bytes == "password":
        signed = pdfs.write("signed.pdf", pdfs.encrypted(9, "AES-256", user_password="secret"))
    else:
        assert isinstance(signed_bytes, bytes)
        signed = pdfs.write("signed.pdf", signed_bytes)
    entry = pdfs.entry(7, [pdfs.attachment(1)], signed_pdf_path=signed)
    report, reader = compile_backup(tmp_path, [entry])

    assert_pages_match(
        page_texts(reader), [COVER_TITLE, *rendered_page_texts(entry), pdfs.text(1, 1)]
    )
    assert report.left_out == (
        LeftOutAttachment(7, Path(signed).name, f"{reason}; generated invoice used"),
    )
    assert report.invoices[0].used_signed_pdf is False
    assert f"{reason}; generated invoice used" in squeeze(reader.pages[0].extract_text())


def test_repaired_signed_pdf_is_used_and_reported(tmp_path: Path, pdfs: PdfFactory) -> None:
    signed = pdfs.write("signed.pdf", pdfs.truncated(5))
    entry = pdfs.entry(3, [], signed_pdf_path=signed)
    report, reader = compile_backup(tmp_path, [entry])

    assert_pages_match(page_texts(reader), [COVER_TITLE, pdfs.text(5, 1)])
    assert report.invoices[0].used_signed_pdf is True
    assert report.repaired == (LeftOutAttachment(3, "signed.pdf", "signed PDF repaired"),)


# ---------------------------------------------------------------------------------------------
# Page numbers


def test_every_page_is_numbered_cover_included(tmp_path: Path, pdfs: PdfFactory) -> None:
    report, reader = compile_backup(tmp_path, two_invoices(pdfs))
    total = len(reader.pages)
    for number, text in enumerate(page_texts(reader), start=1):
        assert re.findall(r"Backup page \d+ of \d+", text) == [f"Backup page {number} of {total}"]


def stamp_word_boxes(pdf_path: str, page_number: int) -> list[tuple[float, ...]]:
    """The boxes of the stamp's words on the page as displayed (rotated), from poppler."""
    html = subprocess.run(
        ["pdftotext", "-f", str(page_number), "-l", str(page_number), "-bbox", pdf_path, "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    words = re.findall(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
        html,
    )
    start = [word[4] for word in words].index("Backup")
    stamp = words[start : start + 5]
    assert [word[4] for word in stamp][:2] == ["Backup", "page"] and stamp[3][4] == "of"
    return [tuple(float(value) for value in word[:4]) for word in stamp]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_page_number_is_upright_at_the_bottom_right_of_rotated_pages(
    tmp_path: Path, pdfs: PdfFactory, rotation: int
) -> None:
    entry = pdfs.entry(1, [pdfs.source("turned.pdf", pdfs.rotated(6, rotation))])
    report, reader = compile_backup(tmp_path, [entry])

    last = report.page_count
    assert f"Backup page {last} of {last}" in reader.pages[-1].extract_text()
    assert reader.pages[-1].rotation == rotation
    assert list(reader.pages[-1].mediabox) == [0, 0, 612, 792]
    width, height = (612, 792) if rotation in (0, 180) else (792, 612)  # as displayed
    boxes = stamp_word_boxes(report.output_path, last)
    assert len(boxes) == 5  # Backup page N of M
    for x_min, y_min, x_max, y_max in boxes:
        assert y_max - y_min < 14, "the words run horizontally on the displayed page"
        assert y_min > height - 60, "at the bottom of the displayed page"
        assert width * 0.6 < x_min < x_max < width, "at the right of the displayed page"
    assert [box[0] for box in boxes] == sorted(box[0] for box in boxes), "read left to right"


def test_pages_sharing_one_content_stream_get_only_their_own_number(
    tmp_path: Path, pdfs: PdfFactory
) -> None:
    entry = pdfs.entry(1, [pdfs.source("shared.pdf", pdfs.shared_contents(8))])
    report, reader = compile_backup(tmp_path, [entry])

    total = report.page_count
    for number in (total - 1, total):
        text = reader.pages[number - 1].extract_text()
        assert pdfs.text(8, 1) in text
        assert re.findall(r"Backup page \d+ of \d+", text) == [f"Backup page {number} of {total}"]


def test_same_file_attached_twice_gets_two_copies_with_their_own_numbers(
    tmp_path: Path, pdfs: PdfFactory
) -> None:
    once = pdfs.attachment(1, pages=2)
    entry = pdfs.entry(1, [once, replace(once, filename="again.pdf")])
    report, reader = compile_backup(tmp_path, [entry])

    total = report.page_count
    texts = page_texts(reader)
    for number in range(total - 3, total + 1):
        assert re.findall(r"Backup page \d+ of \d+", texts[number - 1]) == [
            f"Backup page {number} of {total}"
        ]
    assert [pdfs.text(1, 1) in t for t in texts[-4:]] == [True, False, True, False]


# ---------------------------------------------------------------------------------------------
# Attachment triage


@dataclass(frozen=True)
class Case:
    """One attachment of the bad-input matrix and what should become of it."""

    name: str
    content_type: str
    make: str  # PdfFactory recipe (see `make_case_bytes`)
    reason: str | None  # left out with this reason; None: merged
    pages: int = 0  # pages merged
    repaired: bool = False
    marker: int | None = None  # attachment number whose text must be in the backup


MATRIX = [
    Case("photo.pdf", "application/pdf", "png", "not a PDF (image/png)"),
    Case("photo.png", "image/png", "png", "not a PDF (image/png)"),
    Case("photo.jpg", "application/octet-stream", "jpeg", "not a PDF (image/jpeg)"),
    Case("page.html", "text/html", "html", "not a PDF (text/html)"),
    Case(
        "notes.docx",
        "application/vnd.openxmlformats",
        "zip",
        "not a PDF (application/vnd.openxmlformats)",
    ),
    Case("notes.txt", "text/plain", "text", "not a PDF (text/plain)"),
    Case("empty.pdf", "application/pdf", "empty", "empty file"),
    Case("gone.pdf", "application/pdf", "missing", "missing file"),
    Case("no-path.pdf", "application/pdf", "no-path", "missing file"),
    Case("locked.pdf", "application/pdf", "password", "password-protected"),
    Case("garbage.pdf", "application/pdf", "garbage", "damaged"),
    Case("header-only.pdf", "application/pdf", "header-garbage", "damaged"),
    Case("rc4.pdf", "application/pdf", "rc4", None, pages=1, marker=31),
    Case("aes128.pdf", "application/pdf", "aes128", None, pages=1, marker=32),
    Case("aes256.pdf", "application/pdf", "aes256", None, pages=1, marker=33),
    Case("truncated.pdf", "application/pdf", "truncated", None, pages=1, repaired=True, marker=34),
    Case("bad-xref.pdf", "application/pdf", "bad-xref", None, pages=1, repaired=True, marker=35),
    Case("mislabelled.bin", "application/octet-stream", "pdf", None, pages=1, marker=36),
]


def make_case(pdfs: PdfFactory, case: Case) -> AttachmentSource:
    if case.make == "missing":
        return AttachmentSource(case.name, case.content_type, str(pdfs.directory / "nowhere.pdf"))
    if case.make == "no-path":
        return AttachmentSource(case.name, case.content_type, None)
    recipes = {
        "png": pdfs.png,
        "jpeg": lambda: b"\xff\xd8\xff\xe0" + bytes(64),
        "html": lambda: b"<!DOCTYPE html><html><body>invoice</body></html>",
        "zip": lambda: b"PK\x03\x04" + bytes(64),
        "text": lambda: b"just some notes",
        "empty": lambda: b"",
        "password": lambda: pdfs.encrypted(30, "AES-256", user_password="secret"),
        "garbage": pdfs.garbage,
        "header-garbage": pdfs.header_then_garbage,
        "rc4": lambda: pdfs.encrypted(31, "RC4-128"),
        "aes128": lambda: pdfs.encrypted(32, "AES-128"),
        "aes256": lambda: pdfs.encrypted(33, "AES-256"),
        "truncated": lambda: pdfs.truncated(34),
        "bad-xref": lambda: pdfs.bad_xref(35),
        "pdf": lambda: pdfs.text_pdf([pdfs.text(36, 1)]),
    }
    return pdfs.source(case.name, recipes[case.make](), case.content_type)


@pytest.mark.parametrize("case", MATRIX, ids=[case.name for case in MATRIX])
def test_bad_attachment_matrix(tmp_path: Path, pdfs: PdfFactory, case: Case) -> None:
    entry = pdfs.entry(5, [pdfs.attachment(1), make_case(pdfs, case), pdfs.attachment(2)])
    report, reader = compile_backup(tmp_path, [entry])

    rendered = len(rendered_page_texts(entry))
    assert len(reader.pages) == 1 + rendered + 1 + case.pages + 1
    assert report.page_count == len(reader.pages)
    if case.reason is None:
        assert report.left_out == ()
        assert report.invoices[0].merged_attachments == (
            "attachment-1.pdf",
            case.name,
            "attachment-2.pdf",
        )
    else:
        assert report.left_out == (LeftOutAttachment(5, case.name, case.reason),)
        assert report.invoices[0].merged_attachments == ("attachment-1.pdf", "attachment-2.pdf")
        assert case.reason in squeeze(reader.pages[0].extract_text())
    expected_repaired = (LeftOutAttachment(5, case.name, "damaged file repaired"),)
    assert report.repaired == (expected_repaired if case.repaired else ())
    texts = page_texts(reader)
    assert pdfs.text(1, 1) in texts[1 + rendered]
    assert pdfs.text(2, 1) in texts[-1]
    if case.marker is not None:
        assert pdfs.text(case.marker, 1) in texts[2 + rendered]


def test_every_attachment_bad_still_gives_a_backup(tmp_path: Path, pdfs: PdfFactory) -> None:
    bad = [make_case(pdfs, case) for case in MATRIX if case.reason is not None]
    signed = pdfs.write("signed.pdf", pdfs.garbage())
    entry = pdfs.entry(5, bad, signed_pdf_path=signed)
    report, reader = compile_backup(tmp_path, [entry])

    assert len(reader.pages) == 1 + len(rendered_page_texts(entry))
    assert [item.filename for item in report.left_out] == ["signed.pdf"] + [a.filename for a in bad]
    assert report.invoices[0].merged_attachments == ()


def test_decompression_bomb_is_left_out_as_unsafe(tmp_path: Path, pdfs: PdfFactory) -> None:
    bomb = pdfs.source("bomb.pdf", pdfs.object_stream_bomb(100_000_000))
    entry = pdfs.entry(1, [bomb, pdfs.attachment(1)])
    report, reader = compile_backup(tmp_path, [entry])

    assert report.left_out == (LeftOutAttachment(1, "bomb.pdf", "could not be read safely"),)
    assert pdfs.text(1, 1) in reader.pages[-1].extract_text()


def test_file_that_overruns_the_inspection_deadline_is_left_out(
    tmp_path: Path, pdfs: PdfFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inspection, "INSPECTION_SECONDS_PER_FILE", 0.5)
    # qpdf accepts it, after about 2 s (its tokenizer reads the string byte by byte)
    slow = pdfs.source("slow.pdf", pdfs.slow_to_parse(120_000_000))
    entry = pdfs.entry(1, [slow, pdfs.attachment(1)])
    report, reader = compile_backup(tmp_path, [entry])

    assert report.left_out == (LeftOutAttachment(1, "slow.pdf", "could not be read safely"),)
    assert report.invoices[0].merged_attachments == ("attachment-1.pdf",)
    assert pdfs.text(1, 1) in reader.pages[-1].extract_text()


@contextlib.contextmanager
def another_thread_running() -> Iterator[None]:
    """A second thread alive in this process: the guarded child is then a fresh interpreter,
    not a fork (`pdf.inspection`), and sees none of this process's module settings."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="held-for-the-test")
    thread.start()
    try:
        yield
    finally:
        release.set()
        thread.join()


@pytest.mark.parametrize("threaded", [False, True], ids=["as-it-comes", "fresh-interpreter"])
def test_inspection_memory_cap_leaves_a_bomb_out(
    tmp_path: Path, pdfs: PdfFactory, monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    bomb = pdfs.source("bomb.pdf", pdfs.object_stream_bomb(300_000_000))
    entry = pdfs.entry(1, [pdfs.attachment(1), bomb, pdfs.attachment(2)])
    # Without the Flate limit qpdf would inflate it; the memory cap (per file) stops that, the
    # process it kills is replaced and the files after it are still merged.
    monkeypatch.setattr(attachments, "MAX_INFLATED_BYTES", 0)  # 0: no limit
    monkeypatch.setattr(inspection, "INSPECTION_MEMORY_LIMIT_BYTES", 100 * 1024 * 1024)
    with another_thread_running() if threaded else contextlib.nullcontext():
        report, reader = compile_backup(tmp_path, [entry])

    assert report.left_out == (LeftOutAttachment(1, "bomb.pdf", "could not be read safely"),)
    assert report.invoices[0].merged_attachments == ("attachment-1.pdf", "attachment-2.pdf")
    texts = page_texts(reader)
    assert pdfs.text(1, 1) in texts[-2] and pdfs.text(2, 1) in texts[-1]
    assert not list((tmp_path / "out").glob(".backup-*"))


@pytest.mark.parametrize("threaded", [False, True], ids=["as-it-comes", "fresh-interpreter"])
def test_too_many_pages_or_bytes_is_too_large(
    tmp_path: Path, pdfs: PdfFactory, monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    """The limits set in the calling process apply in the guarded child however it starts."""
    monkeypatch.setattr(attachments, "MAX_INPUT_PAGES", 2)
    many_pages = pdfs.attachment(1, pages=3)
    small = pdfs.attachment(2, pages=2)
    big = pdfs.source("big.pdf", pdfs.text_pdf(["BIG"] * 40))
    monkeypatch.setattr(attachments, "MAX_INPUT_BYTES", Path(big.path).stat().st_size - 1)
    entry = pdfs.entry(1, [many_pages, small, big])
    with another_thread_running() if threaded else contextlib.nullcontext():
        report, reader = compile_backup(tmp_path, [entry])

    assert report.left_out == (
        LeftOutAttachment(1, "attachment-1.pdf", "too large"),
        LeftOutAttachment(1, "big.pdf", "too large"),
    )
    assert report.invoices[0].merged_attachments == ("attachment-2.pdf",)


def test_big_scanned_image_page_is_merged(tmp_path: Path, pdfs: PdfFactory) -> None:
    scan = pdfs.source("scan.pdf", pdfs.big_scanned_page(82_000_000))
    entry = pdfs.entry(1, [scan])
    report, reader = compile_backup(tmp_path, [entry])

    assert report.left_out == ()
    assert report.invoices[0].merged_attachments == ("scan.pdf",)
    assert report.byte_size > 82_000_000
    with pikepdf.open(report.output_path) as pdf:  # pypdf itself refuses so long a stream
        image = pdf.pages[-1].obj.Resources.XObject.Scan
        assert image.Width * image.Height == 82_000_000
        assert len(image.read_raw_bytes()) == 82_000_000


def test_two_filled_copies_of_one_form_keep_both_values(tmp_path: Path, pdfs: PdfFactory) -> None:
    entry = pdfs.entry(
        1,
        [
            pdfs.source("lien-a.pdf", pdfs.form("111.11")),
            pdfs.source("lien-b.pdf", pdfs.form("222.22")),
        ],
    )
    _, reader = compile_backup(tmp_path, [entry])

    fields = reader.get_fields() or {}
    values = sorted(str(field.get("/V")) for field in fields.values())
    assert values == ["111.11", "222.22"]
    texts = page_texts(reader)
    assert "FORM 111.11" in texts[-2] and "FORM 222.22" in texts[-1]


def test_named_destinations_of_two_attachments_stay_apart(tmp_path: Path, pdfs: PdfFactory) -> None:
    entry = pdfs.entry(
        1, [pdfs.source("a.pdf", pdfs.linked(41)), pdfs.source("b.pdf", pdfs.linked(42))]
    )
    report, reader = compile_backup(tmp_path, [entry])

    total = report.page_count
    destinations = reader.named_destinations
    for link_page, target_page in ((total - 3, total - 2), (total - 1, total)):
        annotations = reader.pages[link_page - 1]["/Annots"]
        links = [a.get_object() for a in annotations if a.get_object()["/Subtype"] == "/Link"]
        assert len(links) == 1
        name = str(links[0]["/Dest"])
        assert reader.get_destination_page_number(destinations[name]) + 1 == target_page


# ---------------------------------------------------------------------------------------------
# Cover


def test_cover_lists_invoices_total_and_everything_left_out(
    tmp_path: Path, pdfs: PdfFactory
) -> None:
    first = pdfs.entry(
        11,
        [pdfs.attachment(1, pages=2), pdfs.source("photo.png", pdfs.png(), "image/png")],
        contract_number="SC-2",
        vendor_name="Concrete & Co",
        current_payment_due=Decimal("1234.5"),
    )
    second = pdfs.entry(
        12,
        [pdfs.source("locked.pdf", pdfs.encrypted(3, "RC4-128", user_password="pw"))],
        contract_number="SC-10",
        application_number=4,
        vendor_name="Steel Partners",
        current_payment_due=Decimal("-20.00"),
    )
    notes = [CoverNote("SC-3 · Application #2", "billing period 77 does not exist")]
    report, reader = compile_backup(tmp_path, [first, second], notes)

    cover = squeeze(reader.pages[0].extract_text())
    assert cover.startswith(COVER_TITLE)
    assert "Harbor Tower · Project HT-100" in cover
    assert "Generated Nov 2, 2026 at 14:05 CST" in cover
    assert f"2 invoices · {report.page_count} pages" in cover
    for entry, pages in zip((first, second), report.invoices, strict=True):
        row = [
            entry.contract_number,
            entry.contract_title,
            entry.vendor_name,
            f"#{entry.application_number}",
            f"Invoice {entry.invoice_number}",
            entry.period_label,
            entry.status_label,
            format_money(entry.current_payment_due),
            f"{pages.first_page}–{pages.last_page}",
        ]
        position = 0
        for cell in row:
            found = cover.find(cell, position)
            assert found >= 0, f"{cell!r} missing (or out of order) in the cover row"
            position = found + len(cell)
    assert f"Total current payment due {format_money(Decimal('1214.50'))}" in cover
    not_included = cover[cover.index("Not included") :]
    assert "SC-3 · Application #2 billing period 77 does not exist" in not_included
    assert f"{first.bookmark_title} photo.png not a PDF (image/png)" in not_included
    assert f"{second.bookmark_title} locked.pdf password-protected" in not_included


def test_cover_says_when_nothing_was_left_out(tmp_path: Path, pdfs: PdfFactory) -> None:
    _, reader = compile_backup(tmp_path, [pdfs.entry(1, [pdfs.attachment(1)])])
    assert "Not included Nothing was left out." in squeeze(reader.pages[0].extract_text())


def test_long_cover_shifts_every_page_range(tmp_path: Path, pdfs: PdfFactory) -> None:
    entries = [
        pdfs.entry(n, [pdfs.attachment(n)] if n % 10 == 0 else [], application_number=n)
        for n in range(1, 61)
    ]
    report, reader = compile_backup(tmp_path, entries)

    texts = page_texts(reader)
    covers = first_page_holding(texts, rendered_page_texts(entries[0])[0]) - 1
    assert covers >= 2
    assert report.invoices[0].first_page == covers + 1
    cover_text = squeeze(" ".join(texts[:covers]))
    for pages, bookmark in zip(report.invoices, outline_tree(reader)[1:], strict=True):
        assert bookmark.page == pages.first_page
        assert f"{pages.first_page}–{pages.last_page}" in cover_text
    last = report.invoices[-1]
    assert last.last_page == report.page_count == len(reader.pages)
    assert pdfs.text(60, 1) in texts[-1]


# ---------------------------------------------------------------------------------------------
# Processes


def test_runs_in_a_worker_process(tmp_path: Path, pdfs: PdfFactory) -> None:
    request = BackupRequest(
        project_name="Harbor Tower",
        project_number="HT-100",
        generated_at=GENERATED_AT,
        invoices=(
            pdfs.entry(1, [pdfs.attachment(1), pdfs.source("x.png", pdfs.png(), "image/png")]),
        ),
        output_path=str(tmp_path / "worker" / "backup.pdf"),
    )
    with ProcessPoolExecutor(max_workers=1) as executor:
        report = executor.submit(assemble_backup, request).result(timeout=120)
    assert pickle.loads(pickle.dumps(report)) == report
    assert report.page_count == len(PdfReader(report.output_path).pages)
    assert [item.reason for item in report.left_out] == ["not a PDF (image/png)"]


def test_parallel_rendering_gives_the_same_pdfs(pdfs: PdfFactory) -> None:
    sheets = [pdfs.sheet(f"INV-{n}", n, line_count=n) for n in range(1, 9)]
    with InvoiceRenderer([*sheets, None]) as renderer:
        rendered = [renderer.render(index, sheet) for index, sheet in enumerate(sheets)]
    assert rendered == [render_invoice(sheet) for sheet in sheets]


def test_rotated_attachment_keeps_its_rotation(tmp_path: Path, pdfs: PdfFactory) -> None:
    entry = pdfs.entry(1, [pdfs.source("turned.pdf", pdfs.rotated(6, 90))])
    report, _ = compile_backup(tmp_path, [entry])
    with pikepdf.open(report.output_path) as pdf:
        assert pdf.pages[-1].rotation == 90
        assert [page.rotation for page in pdf.pages[:-1]] == [0] * (len(pdf.pages) - 1)


def test_runs_from_a_threaded_caller(tmp_path: Path, pdfs: PdfFactory) -> None:
    """A caller with other threads cannot fork safely: the capped child is a fresh interpreter."""
    entry = pdfs.entry(1, [pdfs.attachment(1), pdfs.source("bad.pdf", pdfs.garbage())])
    with ThreadPoolExecutor(max_workers=2) as executor:
        report, reader = executor.submit(compile_backup, tmp_path, [entry]).result(timeout=120)

    assert report.left_out == (LeftOutAttachment(1, "bad.pdf", "damaged"),)
    assert pdfs.text(1, 1) in reader.pages[-1].extract_text()


def test_inputs_past_the_open_file_budget_are_merged_too(tmp_path: Path, pdfs: PdfFactory) -> None:
    """Inputs stay open until the write, within the open-file limit; past it they are copied
    into memory and closed. With room for 3 open inputs, all 71 (more than the whole limit
    allows open at once) are merged in order."""
    room_for_inputs = 3
    limit = assemble._RESERVED_FILE_DESCRIPTORS + room_for_inputs
    count = limit + 3
    attachments = [pdfs.attachment(number, pages=2) for number in range(1, count + 1)]
    entry = pdfs.entry(1, attachments, signed_pdf_path=pdfs.write("signed.pdf", pdfs.form("7")))
    request = BackupRequest(
        project_name="Harbor Tower",
        project_number="HT-100",
        generated_at=GENERATED_AT,
        invoices=(entry,),
        output_path=str(tmp_path / "out" / "backup.pdf"),
    )
    request_path = tmp_path / "request.pickle"
    request_path.write_bytes(pickle.dumps(request))
    script = (
        "import pickle, resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit})); "
        "from pdf.assemble import assemble_backup; "
        "report = assemble_backup(pickle.loads(open(sys.argv[1], 'rb').read())); "
        "sys.stdout.buffer.write(pickle.dumps(report))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(request_path)],
        cwd=Path(assemble.__file__).parents[1],
        capture_output=True,
        check=True,
        timeout=120,
    )
    report = pickle.loads(completed.stdout)

    reader = PdfReader(report.output_path)
    texts = page_texts(reader)
    expected = [pdfs.text(n, k) for n in range(1, count + 1) for k in (1, 2)]
    assert_pages_match(texts[-len(expected) :], expected)
    assert "FORM 7" in texts[-len(expected) - 1]
    assert report.left_out == () and report.page_count == len(reader.pages)
    assert [b.title for b in outline_tree(reader)[1].children] == [a.filename for a in attachments]
