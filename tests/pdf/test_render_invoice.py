"""Tests of the default invoice PDF (G702 page + G703 continuation sheet)."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pypdf
import pytest
from reportlab.lib.pagesizes import landscape, letter
from reportlab.pdfbase.pdfmetrics import stringWidth

from pdf.documents import G702Header, G702Summary, G703Line, InvoiceSheet
from pdf.formatting import format_money, format_percent
from pdf.render_invoice import render_invoice

CENT = Decimal("0.01")
RETAINAGE_RATE = Decimal("0.10")
G703_TITLES = (
    "ITEM NO.",
    "DESCRIPTION OF WORK",
    "SCHEDULED VALUE",
    "WORK COMPLETED FROM PREVIOUS APPLICATION",
    "WORK COMPLETED THIS PERIOD",
    "MATERIALS PRESENTLY STORED",
    "TOTAL COMPLETED AND STORED TO DATE (D + E + F)",
    "% (G ÷ C)",
    "BALANCE TO FINISH (C – G)",
    "RETAINAGE",
)


def make_line(
    index: int,
    *,
    description: str | None = None,
    scheduled: Decimal | None = None,
) -> G703Line:
    """A consistent G703 line with amounts that differ from row to row."""
    scheduled_value = (
        scheduled if scheduled is not None else Decimal(10_000 + 137 * index) + Decimal("0.25")
    )
    previous = (scheduled_value * Decimal("0.40")).quantize(CENT, rounding=ROUND_HALF_UP)
    this_period = (scheduled_value * Decimal("0.15")).quantize(CENT, rounding=ROUND_HALF_UP)
    stored = Decimal(index % 7 * 11) + Decimal("0.50") if scheduled_value else Decimal("0")
    completed = previous + this_period + stored
    percent = (completed / scheduled_value * 100) if scheduled_value else Decimal("0")
    return G703Line(
        item_number=f"{index:03d}",
        description_of_work=description if description is not None else f"Work item {index:03d}",
        scheduled_value=scheduled_value,
        work_completed_from_previous_application=previous,
        work_completed_this_period=this_period,
        materials_presently_stored=stored,
        total_completed_and_stored_to_date=completed,
        percent_complete=percent,
        balance_to_finish=scheduled_value - completed,
        retainage=(completed * RETAINAGE_RATE).quantize(CENT, rounding=ROUND_HALF_UP),
    )


def make_sheet(lines: list[G703Line] | None = None, **overrides: object) -> InvoiceSheet:
    """An invoice with a filled header, summary and (by default) three lines."""
    if lines is None:
        lines = [make_line(index) for index in range(1, 4)]
    header = G702Header(
        to_general_contractor="Northwind Builders, Inc.",
        project_name="Harbor View Café · Phase 2",
        project_number="P-2031",
        application_number="7",
        period_start=date(2026, 10, 1),
        period_end=date(2026, 10, 31),
        subcontractor_name="Acme Electric – O’Neil & Sons",
        subcontractor_address="12 Spark Street\nSpringfield, IL 62701",
        contract_for="Electrical — base building",
        contract_date=date(2026, 1, 15),
    )
    summary = G702Summary(
        original_contract_sum=Decimal("1250000.00"),
        net_change_by_change_orders=Decimal("-12500.50"),
        contract_sum_to_date=Decimal("1237499.50"),
        total_completed_and_stored_to_date=Decimal("654321.09"),
        completed_work_retainage_percent=Decimal("10"),
        completed_work_retainage_amount=Decimal("64000.11"),
        stored_materials_retainage_percent=Decimal("5.5"),
        stored_materials_retainage_amount=Decimal("1432.22"),
        total_retainage=Decimal("65432.33"),
        total_earned_less_retainage=Decimal("588888.76"),
        less_previous_certificates_for_payment=Decimal("500123.45"),
        current_payment_due=Decimal("88765.31"),
        balance_to_finish_including_retainage=Decimal("648610.74"),
        previous_change_order_additions=Decimal("3000.00"),
        previous_change_order_deductions=Decimal("10000.25"),
        new_change_order_additions=Decimal("1500.00"),
        new_change_order_deductions=Decimal("7000.25"),
    )
    sheet = InvoiceSheet(
        invoice_number="INV-0042",
        status="Under review",
        billing_date=date(2026, 11, 2),
        header=header,
        summary=summary,
        lines=tuple(lines),
    )
    return replace(sheet, **overrides) if overrides else sheet


def page_texts(data: bytes) -> list[str]:
    """Extracted text of every page, no-break spaces read as spaces."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text().replace("\xa0", " ") for page in reader.pages]


def assert_in_order(text: str, expected: list[str]) -> None:
    """Every string of `expected` occurs in `text`, each after the previous one."""
    cursor = 0
    for fragment in expected:
        found = text.find(fragment, cursor)
        assert found >= 0, f"{fragment!r} missing after position {cursor}: {text[cursor:][:300]!r}"
        cursor = found + len(fragment)


def squeeze(text: str) -> str:
    """`text` without any whitespace, to compare wrapped text with its source."""
    return re.sub(r"\s+", "", text)


Fragment = tuple[str, float, float, float]  # text, left x, right x, baseline y


def page_fragments(data: bytes) -> list[list[Fragment]]:
    """Every string drawn in Helvetica, page by page, with where it starts and ends."""
    return [fragments_of(page) for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def fragments_of(page: pypdf.PageObject) -> list[Fragment]:
    """The Helvetica strings of one page (positions from the text matrix, widths computed)."""
    fragments: list[Fragment] = []

    def visit(
        text: str, _cm: object, tm: list[float], font: dict[str, object] | None, size: float
    ) -> None:
        name = str(font.get("/BaseFont", "")).lstrip("/") if font else ""
        if text.strip() and name.startswith("Helvetica"):
            right = tm[4] + stringWidth(text.strip(), name, size)
            fragments.append((text.strip(), tm[4], right, tm[5]))

    page.extract_text(visitor_text=visit)
    return fragments


def row_strings(line: G703Line) -> list[str]:
    """What one G703 row must show, columns A to J in order (H as "—" when C is zero)."""
    percent = "—" if line.scheduled_value == 0 else format_percent(line.percent_complete)
    return [
        line.item_number,
        line.description_of_work,
        format_money(line.scheduled_value),
        format_money(line.work_completed_from_previous_application),
        format_money(line.work_completed_this_period),
        format_money(line.materials_presently_stored),
        format_money(line.total_completed_and_stored_to_date),
        percent,
        format_money(line.balance_to_finish),
        format_money(line.retainage),
    ]


def expected_total_row(lines: list[G703Line]) -> list[str]:
    """The grand-total row, summed here independently of the renderer."""
    scheduled = sum(line.scheduled_value for line in lines)
    completed = sum(line.total_completed_and_stored_to_date for line in lines)
    percent = "—" if scheduled == 0 else format_percent(Decimal(completed) / scheduled * 100)
    return [
        "GRAND TOTAL",
        format_money(Decimal(scheduled)),
        format_money(
            sum((line.work_completed_from_previous_application for line in lines), Decimal(0))
        ),
        format_money(sum((line.work_completed_this_period for line in lines), Decimal(0))),
        format_money(sum((line.materials_presently_stored for line in lines), Decimal(0))),
        format_money(Decimal(completed)),
        percent,
        format_money(sum((line.balance_to_finish for line in lines), Decimal(0))),
        format_money(sum((line.retainage for line in lines), Decimal(0))),
    ]


# ---------------------------------------------------------------------------------------------
# G702 page


def test_g702_page_shows_header_and_the_nine_lines_in_order() -> None:
    sheet = make_sheet()
    first_page = page_texts(render_invoice(sheet))[0]
    summary = sheet.summary

    assert_in_order(
        first_page,
        [
            "APPLICATION AND CERTIFICATE FOR PAYMENT",
            "Northwind Builders, Inc.",
            "Acme Electric – O’Neil & Sons",
            "12 Spark Street",
            "Springfield, IL 62701",
            "Electrical — base building",
            "Jan 15, 2026",
        ],
    )
    for value in (
        "Harbor View Café · Phase 2",
        "P-2031",
        "Oct 1, 2026",
        "Oct 31, 2026",
        "INV-0042",
        "Under review",
        "Nov 2, 2026",
    ):
        assert value in first_page
    assert_in_order(
        first_page,
        [
            "1.",
            "ORIGINAL CONTRACT SUM",
            "$1,250,000.00",
            "2.",
            "Net change by change orders",
            "-$12,500.50",
            "3.",
            "CONTRACT SUM TO DATE",
            "$1,237,499.50",
            "4.",
            "TOTAL COMPLETED & STORED TO DATE",
            "$654,321.09",
            "5.",
            "RETAINAGE",
            "10.00% of completed work",
            "$64,000.11",
            "5.50% of stored material",
            "$1,432.22",
            "Total retainage",
            "$65,432.33",
            "6.",
            "TOTAL EARNED LESS RETAINAGE",
            "$588,888.76",
            "7.",
            "LESS PREVIOUS CERTIFICATES FOR PAYMENT",
            "$500,123.45",
            "8.",
            "CURRENT PAYMENT DUE",
            "$88,765.31",
            "9.",
            "BALANCE TO FINISH, INCLUDING RETAINAGE",
            "$648,610.74",
        ],
    )
    # The same figures, straight from the input, so a changed fixture cannot hide a bug.
    for amount in (
        summary.original_contract_sum,
        summary.net_change_by_change_orders,
        summary.contract_sum_to_date,
        summary.total_completed_and_stored_to_date,
        summary.completed_work_retainage_amount,
        summary.stored_materials_retainage_amount,
        summary.total_retainage,
        summary.total_earned_less_retainage,
        summary.less_previous_certificates_for_payment,
        summary.current_payment_due,
        summary.balance_to_finish_including_retainage,
    ):
        assert format_money(amount) in first_page
    assert "DESCRIPTION OF WORK" not in first_page  # the G703 starts on a new page


def test_g702_change_order_box_and_signature_block() -> None:
    first_page = page_texts(render_invoice(make_sheet()))[0]

    assert_in_order(
        first_page,
        [
            "CHANGE ORDER SUMMARY",
            "ADDITIONS",
            "DEDUCTIONS",
            "previous months",
            "$3,000.00",
            "$10,000.25",
            "this month",
            "$1,500.00",
            "$7,000.25",
            "TOTALS",
            "$4,500.00",
            "$17,000.50",
            "NET CHANGES BY CHANGE",
            "-$12,500.50",
        ],
    )
    assert_in_order(first_page, ["SUBCONTRACTOR'S CERTIFICATION", "Signature:", "Date:"])
    assert_in_order(
        first_page,
        ["CERTIFICATE FOR PAYMENT", "Amount certified:", "Architect:", "General contractor:"],
    )


# ---------------------------------------------------------------------------------------------
# G703 continuation sheet


def test_g703_rows_and_grand_total() -> None:
    lines = [make_line(index) for index in range(1, 13)]
    texts = page_texts(render_invoice(make_sheet(lines)))
    assert len(texts) == 2
    continuation = texts[1]

    assert_in_order(
        squeeze(continuation),
        [squeeze(title) for title in ("CONTINUATION SHEET", *G703_TITLES)],
    )
    expected = [text for line in lines for text in row_strings(line)]
    assert_in_order(continuation, expected + expected_total_row(lines))


def test_grand_total_sums_are_computed_from_the_lines() -> None:
    lines = [
        make_line(1, scheduled=Decimal("1000.10")),
        make_line(2, scheduled=Decimal("2000.20")),
        make_line(3, scheduled=Decimal("0.05")),
    ]
    continuation = page_texts(render_invoice(make_sheet(lines)))[1]
    total_row = continuation[continuation.index("GRAND TOTAL") :]

    assert_in_order(total_row, ["GRAND TOTAL", "$3,000.35"])
    assert_in_order(total_row, expected_total_row(lines))


def test_long_table_repeats_header_and_numbers_every_page() -> None:
    lines = [make_line(index) for index in range(1, 301)]
    data = render_invoice(make_sheet(lines))
    reader = pypdf.PdfReader(io.BytesIO(data))
    texts = page_texts(data)
    page_count = len(reader.pages)

    assert page_count >= 6
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {page_count}" in text
        assert "INV-0042" in text and "Application #7" in text
    for text in texts[1:]:
        assert "CONTINUATION SHEET" in text
        assert "DESCRIPTION OF WORK" in text
        assert_in_order(squeeze(text), [squeeze(title) for title in G703_TITLES])
    assert f"Page {page_count + 1}" not in "".join(texts)
    # Every row once, in order, across the pages; the total after the last row.
    continuation = "\n".join(texts[1:])
    for line in lines:
        assert continuation.count(line.description_of_work) == 1
    assert_in_order(continuation, [line.description_of_work for line in lines])
    assert_in_order(texts[-1], expected_total_row(lines))


def test_markup_characters_and_long_descriptions_wrap() -> None:
    markup = "Conduit <b>& wiring</b> for panel <A> & 5 > 3"
    long_markup = markup + " " + "with pull boxes & <i>labels</i> " * 8
    words = " ".join(f"segment{index:02d}" for index in range(60))
    long_description = (words + " " + "end-of-text")[:600]
    unbroken = "Z" * 600
    lines = [
        make_line(1, description=markup),
        make_line(2, description=long_description),
        make_line(3, description=unbroken),
        make_line(4),
        make_line(5, description=long_markup),
    ]
    sheet = make_sheet(lines)
    header = replace(sheet.header, contract_for="Panels <b>& feeders</b> <A> & more")
    texts = page_texts(render_invoice(replace(sheet, header=header)))
    continuation = "\n".join(texts[1:])

    assert "Panels <b>& feeders</b> <A> & more" in texts[0]
    assert markup in continuation
    assert squeeze(long_markup) in squeeze(continuation)
    assert len(long_description) == 600
    assert squeeze(long_description) in squeeze(continuation)
    assert long_description not in continuation  # it is wrapped over several lines ...
    wrapped = [text_line for text_line in continuation.splitlines() if "segment" in text_line]
    assert len(wrapped) >= 5
    assert squeeze(unbroken) in squeeze(continuation)
    assert max(len(text_line) for text_line in continuation.splitlines()) < 200
    assert_in_order(continuation, ["004", "Work item 004", "005", *expected_total_row(lines)])


def test_zero_scheduled_value_does_not_divide_by_zero() -> None:
    zero_line = make_line(2, description="Allowance, not yet valued", scheduled=Decimal("0"))
    lines = [make_line(1), zero_line]
    continuation = page_texts(render_invoice(make_sheet(lines)))[1]

    assert_in_order(continuation, row_strings(zero_line))
    assert_in_order(continuation, expected_total_row(lines))


def test_all_zero_and_empty_sheets_render() -> None:
    zero_lines = [make_line(1, scheduled=Decimal("0")), make_line(2, scheduled=Decimal("0"))]
    zero_text = page_texts(render_invoice(make_sheet(zero_lines)))[1]
    assert_in_order(zero_text, ["GRAND TOTAL", "$0.00", "—"])

    empty_texts = page_texts(render_invoice(make_sheet([])))
    assert len(empty_texts) == 2
    assert_in_order(empty_texts[1], ["DESCRIPTION OF WORK", "GRAND TOTAL", "$0.00", "—"])


def test_missing_dates_and_address_render_as_dashes() -> None:
    sheet = make_sheet()
    header = replace(
        sheet.header,
        period_start=None,
        period_end=None,
        contract_date=None,
        subcontractor_address="",
    )
    first_page = page_texts(render_invoice(replace(sheet, header=header, billing_date=None)))[0]
    assert_in_order(first_page, ["CONTRACT DATE", "—"])
    assert_in_order(first_page, ["BILLING DATE", "—"])


@pytest.mark.parametrize("text", ["·", "–", "—", "’", "é", "Café", "O’Neil & Sons"])
def test_winansi_characters_survive_text_extraction(text: str) -> None:
    line = make_line(1, description=f"Trim {text} finish")
    texts = page_texts(render_invoice(make_sheet([line])))
    assert f"Trim {text} finish" in texts[1]


def test_rendering_is_deterministic_and_without_ascii85() -> None:
    sheet = make_sheet()
    first = render_invoice(sheet)
    assert first.startswith(b"%PDF-")
    assert render_invoice(sheet) == first
    assert b"ASCII85Decode" not in first


# ---------------------------------------------------------------------------------------------
# Layout limits: wrapping within columns, long rows and values, glyphs outside WinAnsi


def test_row_taller_than_a_page_is_split_across_pages_under_one_header() -> None:
    tall = " ".join(f"word{index:03d}" for index in range(700))
    lines = [make_line(1), make_line(2, description=tall), make_line(3), make_line(4)]
    texts = page_texts(render_invoice(make_sheet(lines)))
    page_count = len(texts)
    continuation = "\n".join(texts[1:])

    assert page_count >= 4
    for number, text in enumerate(texts, start=1):
        assert f"Page {number} of {page_count}" in text
    for text in texts[1:]:
        assert squeeze(text).count("DESCRIPTIONOFWORK") == 1  # no second header mid-page
    assert_in_order(continuation, [f"word{index:03d}" for index in range(700)])
    assert_in_order(continuation, [*row_strings(lines[0])[:3], "word000"])
    assert_in_order(continuation, ["word699", *row_strings(lines[2]), *row_strings(lines[3])])
    assert_in_order(texts[-1], expected_total_row(lines))


def test_very_long_header_values_are_cut_so_page_one_fits() -> None:
    many_lines = "\n".join(f"Address line {index}" for index in range(30))
    sheet = make_sheet()
    header = replace(sheet.header, subcontractor_address=many_lines, contract_for=many_lines)
    data = render_invoice(replace(sheet, header=header, status=many_lines))
    texts = page_texts(data)

    assert len(texts) == 2
    # Eight lines at most: the name and seven address lines, eight lines of the others.
    assert_in_order(
        texts[0],
        ["FROM (SUBCONTRACTOR)", "Acme Electric", "Address line 0", "Address line 6…"],
    )
    assert_in_order(texts[0], ["CONTRACT FOR", "Address line 0", "Address line 7…"])
    assert_in_order(texts[0], ["STATUS", "Address line 7…", "BILLING DATE", "Nov 2, 2026"])
    assert "Address line 8" not in texts[0]
    assert "CURRENT PAYMENT DUE" in texts[0] and "General contractor:" in texts[0]


def test_text_outside_winansi_is_drawn_with_substitute_glyphs() -> None:
    line = make_line(1, description="Arrow → and 中文 then Café")
    sheet = make_sheet([line, make_line(2)])
    data = render_invoice(sheet)
    continuation = page_texts(data)[1]

    assert render_invoice(sheet) == data
    assert "Arrow" in continuation and "then Café" in continuation
    assert_in_order(continuation, [line.item_number, "Arrow", *row_strings(line)[2:]])
    assert_in_order(continuation, row_strings(make_line(2)))


def test_text_stays_inside_the_margins_and_descriptions_inside_their_column() -> None:
    words = " ".join(f"segment{index:02d}" for index in range(80))
    lines = [
        make_line(1, description=words),
        make_line(2, description="Z" * 400),
        make_line(3, description="Conduit <b>& wiring</b> " * 20),
        make_line(4, scheduled=Decimal("987654321.99")),
    ]
    sheet = make_sheet(lines)
    long_word = "W" * 200
    header = replace(sheet.header, contract_for=long_word, project_name="Harbor " * 40)
    data = render_invoice(replace(sheet, header=header, status=long_word))
    pages = page_fragments(data)
    margin = 36.0

    for number, fragments in enumerate(pages):
        page_width = letter[0] if number == 0 else landscape(letter)[0]
        for text, left, right, baseline in fragments:
            assert left >= margin - 0.01, (number, text)
            assert right <= page_width - margin + 0.01, (number, text)
            assert baseline >= margin * 0.6 - 0.01, (number, text)
    # Page 1: values of the left header column stay left of the right column.
    left_column = [fragment for fragment in pages[0] if "WWW" in fragment[0]]
    assert left_column and all(right <= 306.0 for _, left, right, _ in left_column if left < 300)
    # Continuation: descriptions end before the amounts of column C begin.
    for fragments in pages[1:]:
        amounts_left = min(
            (left for text, left, _, _ in fragments if text.startswith("$")), default=1e9
        )
        descriptions = [f for f in fragments if f[0].startswith(("segment", "ZZZ", "Conduit"))]
        assert all(right < amounts_left for _, _, right, _ in descriptions)
    continuation = "\n".join(page_texts(data)[1:])
    assert squeeze(words) in squeeze(continuation)
    assert "$987,654,321.99" in continuation


def test_extreme_header_values_still_fit_page_one() -> None:
    paragraph = "\n".join(f"Line {index} " + "long words " * 12 for index in range(40))
    sheet = make_sheet()
    header = replace(
        sheet.header,
        to_general_contractor=paragraph,
        project_name=paragraph,
        project_number=paragraph,
        application_number=paragraph,
        subcontractor_name=paragraph,
        subcontractor_address=paragraph,
        contract_for=paragraph,
    )
    data = render_invoice(replace(sheet, header=header, invoice_number=paragraph, status=paragraph))
    texts = page_texts(data)

    assert len(texts) == 2
    assert "…" in texts[0]
    for fragment in ("CURRENT PAYMENT DUE", "$88,765.31", "Signature:", "General contractor:"):
        assert fragment in texts[0]
    assert "Page 1 of 2" in texts[0] and "Page 2 of 2" in texts[1]
    assert all(baseline >= 21.6 - 0.01 for *_, baseline in page_fragments(data)[0])


@pytest.mark.parametrize(("row_count", "page_count"), [(0, 2), (25, 2), (50, 3)])
def test_page_count_follows_the_number_of_rows(row_count: int, page_count: int) -> None:
    lines = [make_line(index) for index in range(1, row_count + 1)]
    texts = page_texts(render_invoice(make_sheet(lines)))

    assert len(texts) == page_count
    assert f"Page {page_count} of {page_count}" in texts[-1]
    assert "GRAND TOTAL" in texts[-1] and "GRAND TOTAL" not in "".join(texts[:-1])
