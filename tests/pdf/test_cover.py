"""Tests of `pdf.cover.render_cover`'s length: the first guess measures the rows, so a cover
takes one render pass; a guess that is off never leaves blank padding pages behind."""

from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader

from pdf.cover import (
    BLANK_PAGE_NOTE,
    CoverContent,
    CoverInvoiceRow,
    _estimated_page_count,
    render_cover,
)
from pdf.documents import LeftOutAttachment
from tests.pdf.conftest import make_entry

GENERATED_AT = datetime(2026, 11, 2, 14, 5, tzinfo=ZoneInfo("America/Chicago"))


def cover_content(invoices: int, left_out: int, vendor_words: int = 2) -> CoverContent:
    entries = [
        make_entry(number, contract_number=f"SC-{number}", vendor_name="Polar Air " * vendor_words)
        for number in range(1, invoices + 1)
    ]
    rows = tuple(
        CoverInvoiceRow(
            entry=entry,
            first_body_page=10 * index + 1,
            last_body_page=10 * index + 9,
            used_signed_pdf=index % 4 == 0,
        )
        for index, entry in enumerate(entries)
    )
    return CoverContent(
        project_name="Harbor Tower",
        project_number="HT-100",
        generated_at=GENERATED_AT,
        invoices=rows,
        not_included=(),
        left_out=tuple(
            LeftOutAttachment(1, f"scan-{number}.pdf", "damaged") for number in range(left_out)
        ),
        repaired=(),
        body_page_count=10 * invoices,
    )


@pytest.mark.parametrize(
    ("invoices", "left_out", "vendor_words"),
    [(1, 0, 2), (15, 0, 2), (16, 3, 2), (50, 0, 2), (50, 0, 12), (120, 5, 2)],
)
def test_first_guess_is_the_cover_length(invoices: int, left_out: int, vendor_words: int) -> None:
    content = cover_content(invoices, left_out, vendor_words)

    _, page_count = render_cover(content)

    assert _estimated_page_count(content) == page_count


@pytest.mark.parametrize(("invoices", "left_out"), [(5, 30), (20, 30), (33, 30)])
def test_a_wrong_guess_leaves_no_blank_pages(invoices: int, left_out: int) -> None:
    content = cover_content(invoices, left_out)

    cover, page_count = render_cover(content)

    reader = PdfReader(io.BytesIO(cover))
    assert len(reader.pages) == page_count
    assert not any(BLANK_PAGE_NOTE in page.extract_text() for page in reader.pages)
