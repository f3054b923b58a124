"""The cover page(s) of a backup: what it holds, where, what was left out, and the checks (the
invoices whose numbers do not tie out, what does not and by how much).

`render_cover(content)` returns the PDF bytes and the cover's page count. Page ranges on the cover
are final page numbers, which depend on the cover's own length: the cover is rendered assuming
one page, and again with the count it actually took until the count is stable (in practice at
most twice). Letter portrait, core Helvetica fonts only (WinAnsi), like the invoice PDFs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    KeepTogether,
    LongTable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    TableStyle,
)

from pdf.documents import CoverNote, InvoiceEntry, LeftOutAttachment
from pdf.formatting import format_money, generated_label

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
GRID_GREY = colors.HexColor("#9A9A9A")
HEADER_FILL = colors.HexColor("#E6E9EE")
STRIPE_FILL = colors.HexColor("#F6F7F9")
MUTED = colors.HexColor("#555555")
FLAG_COLOR = "#B00020"  # "does not tie out" in the invoice table
PAGE_SIZE = letter
SIDE_MARGIN = 0.6 * inch
TOP_MARGIN = 0.6 * inch
BOTTOM_MARGIN = 0.85 * inch  # keeps clear of the "Backup page N of M" stamp
CONTENT_WIDTH = PAGE_SIZE[0] - 2 * SIDE_MARGIN
MAX_RENDER_PASSES = 5
FRAME_PADDING = 6.0  # platypus frames' default padding on each side
FRAME_WIDTH = CONTENT_WIDTH - 2 * FRAME_PADDING  # what the frame gives a flowable
CELL_PADDING_X = 4.0  # table cells (`_table_style`)
CELL_PADDING_Y = 3.0
BLANK_PAGE_NOTE = "This page is intentionally left blank."
ALL_TIE_OUT = (
    "Every invoice's numbers tie out: the G702 lines, the G702 against its G703 continuation "
    "sheet, each G703 row and the change-order summary."
)
CHECK_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Invoice", 0.22),
    ("What does not tie out", 0.36),
    ("Shown", 0.14),
    ("Should be", 0.14),
    ("Difference", 0.14),
)
NO_VALUE = "—"

INVOICE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Contract", 0.22),
    ("Vendor", 0.18),
    ("Application", 0.12),
    ("Billing period", 0.14),
    ("Status", 0.12),
    ("Current payment due", 0.13),
    ("Pages", 0.09),
)
RIGHT_ALIGNED_COLUMNS = frozenset({5, 6})


def _style(name: str, **overrides: Any) -> ParagraphStyle:
    settings: dict[str, Any] = {"fontName": FONT, "fontSize": 8, "leading": 10}
    settings.update(overrides)
    return ParagraphStyle(name, **settings)


TITLE_STYLE = _style("CoverTitle", fontName=FONT_BOLD, fontSize=17, leading=21)
PROJECT_STYLE = _style("CoverProject", fontName=FONT_BOLD, fontSize=11, leading=14)
META_STYLE = _style("CoverMeta", fontSize=8.5, leading=11, textColor=MUTED)
HEADING_STYLE = _style("CoverHeading", fontName=FONT_BOLD, fontSize=11, leading=14)
HEADER_CELL_STYLE = _style("CoverHeaderCell", fontName=FONT_BOLD, fontSize=7.5, leading=9)
HEADER_RIGHT_STYLE = _style(
    "CoverHeaderRight", fontName=FONT_BOLD, fontSize=7.5, leading=9, alignment=2
)
CELL_STYLE = _style("CoverCell", fontSize=8, leading=10)
CELL_RIGHT_STYLE = _style("CoverCellRight", fontSize=8, leading=10, alignment=2)
TOTAL_STYLE = _style("CoverTotal", fontName=FONT_BOLD, fontSize=8, leading=10)
TOTAL_RIGHT_STYLE = _style(
    "CoverTotalRight", fontName=FONT_BOLD, fontSize=8, leading=10, alignment=2
)
BODY_STYLE = _style("CoverBody", fontSize=8.5, leading=11)


@dataclass(frozen=True)
class CoverInvoiceRow:
    """One invoice of the backup and its page range counted from the first page after the cover."""

    entry: InvoiceEntry
    first_body_page: int
    last_body_page: int
    used_signed_pdf: bool


@dataclass(frozen=True)
class CoverContent:
    """Everything the cover shows."""

    project_name: str
    project_number: str
    generated_at: datetime
    invoices: tuple[CoverInvoiceRow, ...]
    not_included: tuple[CoverNote, ...]
    left_out: tuple[LeftOutAttachment, ...]
    repaired: tuple[LeftOutAttachment, ...]
    body_page_count: int
    data_note: str | None = None  # shown under "Generated …" (e.g. "Procore data as of …")
    subcontractor_word: str = "Subcontractor"  # the project's name ("Trade Partner")


def render_cover(content: CoverContent) -> tuple[bytes, int]:
    """Render the cover; return its PDF bytes and its page count (page ranges account for it).

    The first guess (`_estimated_page_count`) measures the rows, so most covers take one pass;
    a guess that was too long is replaced by the real length. From then on the assumed length
    only grows from pass to pass; should a pass come out shorter than assumed (it would take
    page numbers that change the wrapping), the cover is padded with blank pages to the assumed
    length, so the page ranges it shows stay true.
    """
    assumed_pages = _estimated_page_count(content)
    pdf_bytes, page_count = _render(content, assumed_pages)
    if page_count < assumed_pages:  # the first guess was too long: start from the real length
        assumed_pages = page_count
        pdf_bytes, page_count = _render(content, assumed_pages)
    for _ in range(MAX_RENDER_PASSES):
        if page_count == assumed_pages:
            return pdf_bytes, page_count
        if page_count < assumed_pages:
            break
        assumed_pages = page_count
        pdf_bytes, page_count = _render(content, assumed_pages)
    pdf_bytes, page_count = _render(content, assumed_pages, pad_to=assumed_pages)
    if page_count != assumed_pages:
        raise RuntimeError(f"the cover took {page_count} pages, {assumed_pages} expected")
    return pdf_bytes, page_count


def _estimated_page_count(content: CoverContent) -> int:
    """A first guess at the cover's length, so that most covers are rendered once.

    The invoice table is measured row by row (each cell's text wrapped to its column as its
    paragraph will be) and put on pages under its repeated header; the sections below it are
    estimated from their line counts. `render_cover` checks the guess against the real layout.
    """
    frame_height = PAGE_SIZE[1] - TOP_MARGIN - BOTTOM_MARGIN - 2 * FRAME_PADDING
    widths = [CONTENT_WIDTH * share - 2 * CELL_PADDING_X for _, share in INVOICE_COLUMNS]
    header = _row_height(
        [
            _lines(title, FONT_BOLD, 7.5, width)
            for (title, _), width in zip(INVOICE_COLUMNS, widths, strict=True)
        ],
        leading=9,
    )
    pages = 1
    # The top block's counts line is one line whatever the page count: measured with 1.
    room = frame_height - _height(_top_block(content, 1)) - header
    for row in content.invoices:
        height = _row_height(_invoice_row_lines(row, widths), leading=10)
        if height > room:
            pages += 1
            room = frame_height - header
        room -= height
    room -= _row_height([1], leading=10)  # the total row
    rest = _height(_sections(content))
    while rest > room:
        rest -= max(room, 0)
        pages += 1
        room = frame_height
    return pages


def _lines(text: str, font: str, size: float, width: float) -> int:
    """How many lines `text` takes in a paragraph `width` wide (an empty text shows "—")."""
    return max(1, len(simpleSplit(text, font, size, width)))


def _row_height(cell_lines: Sequence[int], leading: float) -> float:
    return max(cell_lines) * leading + 2 * CELL_PADDING_Y


def _invoice_row_lines(row: CoverInvoiceRow, widths: Sequence[float]) -> list[int]:
    """Lines of each cell of an invoice row (see `_invoice_cells`), money and pages one each."""
    entry = row.entry
    contract = _lines(entry.contract_number, FONT_BOLD, 8, widths[0])
    if entry.contract_title:
        contract += _lines(entry.contract_title, FONT, 8, widths[0])
    application = _lines(f"#{entry.application_number}", FONT, 8, widths[2])
    if entry.invoice_number:
        application += _lines(f"Invoice {entry.invoice_number}", FONT, 8, widths[2])
    status = _lines(entry.status_label, FONT, 8, widths[4]) + row.used_signed_pdf
    status += bool(entry.findings)
    return [
        contract,
        _lines(entry.vendor_name, FONT, 8, widths[1]),
        application,
        _lines(entry.period_label, FONT, 8, widths[3]),
        status,
    ]


def _height(flowables: Sequence[Flowable]) -> float:
    """How tall `flowables` are, laid out one below the other in the frame's width (on a
    scratch canvas: some flowables measure on one)."""
    canvas = Canvas(io.BytesIO(), pagesize=PAGE_SIZE)
    return sum(flowable.wrapOn(canvas, FRAME_WIDTH, PAGE_SIZE[1])[1] for flowable in flowables)


def page_range_label(first: int, last: int) -> str:
    """``(5, 9)`` → ``"5–9"``; a single page → ``"5"``."""
    return str(first) if first == last else f"{first}–{last}"


def _render(
    content: CoverContent, cover_pages: int, pad_to: int | None = None
) -> tuple[bytes, int]:
    """Render assuming the cover takes `cover_pages`; pad with blank pages to `pad_to`."""
    flowables = _flowables(content, cover_pages)
    if pad_to is not None:
        _, unpadded_pages = _render(content, cover_pages)
        padding = [PageBreak(), Paragraph(BLANK_PAGE_NOTE, META_STYLE)]
        flowables += padding * max(0, pad_to - unpadded_pages)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=PAGE_SIZE,
        leftMargin=SIDE_MARGIN,
        rightMargin=SIDE_MARGIN,
        topMargin=TOP_MARGIN,
        bottomMargin=BOTTOM_MARGIN,
        title=f"{content.subcontractor_word} invoice backup · {content.project_name}",
        creator="invoice-backups",
        author="",
        invariant=1,
    )
    document.build(flowables)
    return buffer.getvalue(), document.page


def _flowables(content: CoverContent, cover_pages: int) -> list[Flowable]:
    invoices: Flowable = (
        _invoice_table(content.invoices, cover_pages)
        if content.invoices
        else Paragraph("No invoice could be included.", BODY_STYLE)
    )
    return [*_top_block(content, cover_pages), invoices, *_sections(content)]


def _top_block(content: CoverContent, cover_pages: int) -> list[Flowable]:
    """Title, project, generated, counts and the "Invoices" heading."""
    total_pages = cover_pages + content.body_page_count
    return [
        Paragraph(f"{_text(content.subcontractor_word)} invoice backup", TITLE_STYLE),
        Spacer(0, 4),
        Paragraph(
            f"{_text(content.project_name)} · Project {_text(content.project_number)}",
            PROJECT_STYLE,
        ),
        Paragraph(f"Generated {_text(generated_label(content.generated_at))}", META_STYLE),
        *([Paragraph(_text(content.data_note), META_STYLE)] if content.data_note else []),
        Paragraph(_counts_line(len(content.invoices), total_pages), META_STYLE),
        Spacer(0, 14),
        Paragraph("Invoices", HEADING_STYLE),
        Spacer(0, 4),
    ]


def _sections(content: CoverContent) -> list[Flowable]:
    """Checks, not included and repaired: below the invoice table (no page numbers in them)."""
    return [
        *_checks_section(content),
        *_not_included_section(content),
        *_repaired_section(content),
    ]


def _counts_line(invoice_count: int, total_pages: int) -> str:
    invoices = "invoice" if invoice_count == 1 else "invoices"
    pages = "page" if total_pages == 1 else "pages"
    return f"{invoice_count} {invoices} · {total_pages} {pages}"


def _invoice_table(rows: Sequence[CoverInvoiceRow], cover_pages: int) -> LongTable:
    header = [
        Paragraph(
            title, HEADER_RIGHT_STYLE if column in RIGHT_ALIGNED_COLUMNS else HEADER_CELL_STYLE
        )
        for column, (title, _) in enumerate(INVOICE_COLUMNS)
    ]
    body = [_invoice_cells(row, cover_pages) for row in rows]
    total = sum((row.entry.current_payment_due for row in rows), Decimal(0))
    total_row = [
        Paragraph("Total current payment due", TOTAL_STYLE),
        "",
        "",
        "",
        "",
        Paragraph(_text(format_money(total)), TOTAL_RIGHT_STYLE),
        "",
    ]
    widths = [CONTENT_WIDTH * share for _, share in INVOICE_COLUMNS]
    table = LongTable([header, *body, total_row], colWidths=widths, repeatRows=1)
    table.setStyle(_table_style(len(body), with_total=True))
    return table


def _invoice_cells(row: CoverInvoiceRow, cover_pages: int) -> list[Paragraph]:
    entry = row.entry
    contract = f"<b>{_text(entry.contract_number)}</b>"
    if entry.contract_title:
        contract += f"<br/>{_text(entry.contract_title)}"
    application = f"#{entry.application_number}"
    if entry.invoice_number:
        application += f"<br/>Invoice {_text(entry.invoice_number)}"
    status = _text(entry.status_label)
    if row.used_signed_pdf:
        status += '<br/><font color="#555555">Signed PDF</font>'
    if entry.findings:
        status += f'<br/><font color="{FLAG_COLOR}"><b>Does not tie out</b></font>'
    pages = page_range_label(row.first_body_page + cover_pages, row.last_body_page + cover_pages)
    return [
        Paragraph(contract, CELL_STYLE),
        Paragraph(_text(entry.vendor_name), CELL_STYLE),
        Paragraph(application, CELL_STYLE),
        Paragraph(_text(entry.period_label), CELL_STYLE),
        Paragraph(status, CELL_STYLE),
        Paragraph(_text(format_money(entry.current_payment_due)), CELL_RIGHT_STYLE),
        Paragraph(pages, CELL_RIGHT_STYLE),
    ]


def _checks_section(content: CoverContent) -> list[Flowable]:
    """Every finding of the included invoices: invoice, what does not tie out, by how much."""
    if not content.invoices:
        return []
    flowables: list[Flowable] = [Spacer(0, 16), Paragraph("Checks", HEADING_STYLE), Spacer(0, 4)]
    flagged = [row.entry for row in content.invoices if row.entry.findings]
    if not flagged:
        return [*flowables, Paragraph(ALL_TIE_OUT, BODY_STYLE)]
    count = len(flagged)
    summary = (
        f"{count} invoice{'s do' if count != 1 else ' does'} not tie out. Each line names the "
        "amount shown on the invoice and what the invoice's own figures give instead."
    )
    header = [
        Paragraph(title, HEADER_RIGHT_STYLE if column >= 2 else HEADER_CELL_STYLE)
        for column, (title, _) in enumerate(CHECK_COLUMNS)
    ]
    body = [
        [
            Paragraph(_text(entry.bookmark_title), CELL_STYLE),
            Paragraph(_text(f"{finding.where}: {finding.rule}"), CELL_STYLE),
            Paragraph(_text(finding.amount_text(finding.shown)), CELL_RIGHT_STYLE),
            Paragraph(_text(finding.amount_text(finding.expected)), CELL_RIGHT_STYLE),
            Paragraph(_text(finding.amount_text(finding.difference)), CELL_RIGHT_STYLE),
        ]
        for entry in flagged
        for finding in entry.findings
    ]
    table = LongTable(
        [header, *body],
        colWidths=[CONTENT_WIDTH * share for _, share in CHECK_COLUMNS],
        repeatRows=1,
    )
    table.setStyle(_table_style(len(body), with_total=False))
    return [*flowables, Paragraph(summary, BODY_STYLE), Spacer(0, 4), table]


def _not_included_section(content: CoverContent) -> list[Flowable]:
    flowables: list[Flowable] = [Spacer(0, 16), Paragraph("Not included", HEADING_STYLE)]
    if not content.not_included and not content.left_out:
        return [*flowables, Spacer(0, 4), Paragraph("Nothing was left out.", BODY_STYLE)]
    if content.not_included:
        rows = [[note.subject, note.reason] for note in content.not_included]
        flowables += [Spacer(0, 4), _simple_table(("What", "Reason"), rows, (0.45, 0.55))]
    if content.left_out:
        labels = _invoice_labels(content)
        rows = [
            [labels.get(item.invoice_id, str(item.invoice_id)), item.filename, item.reason]
            for item in content.left_out
        ]
        flowables += [
            Spacer(0, 8),
            _simple_table(("Invoice", "File", "Reason"), rows, (0.36, 0.34, 0.30)),
        ]
    return flowables


def _repaired_section(content: CoverContent) -> list[Flowable]:
    if not content.repaired:
        return []
    labels = _invoice_labels(content)
    rows = [
        [labels.get(item.invoice_id, str(item.invoice_id)), item.filename, item.reason]
        for item in content.repaired
    ]
    return [
        Spacer(0, 16),
        KeepTogether(
            [
                Paragraph("Repaired and included", HEADING_STYLE),
                Spacer(0, 4),
                _simple_table(("Invoice", "File", "Note"), rows, (0.36, 0.34, 0.30)),
            ]
        ),
    ]


def _invoice_labels(content: CoverContent) -> dict[int, str]:
    return {row.entry.invoice_id: row.entry.bookmark_title for row in content.invoices}


def _simple_table(
    titles: Sequence[str], rows: Sequence[Sequence[str]], shares: Sequence[float]
) -> LongTable:
    header = [Paragraph(title, HEADER_CELL_STYLE) for title in titles]
    body = [[Paragraph(_text(cell), CELL_STYLE) for cell in row] for row in rows]
    table = LongTable(
        [header, *body], colWidths=[CONTENT_WIDTH * share for share in shares], repeatRows=1
    )
    table.setStyle(_table_style(len(body), with_total=False))
    return table


def _table_style(body_rows: int, *, with_total: bool) -> TableStyle:
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
        ("LINEBELOW", (0, 0), (-1, 0), 0.75, GRID_GREY),
        ("LINEBELOW", (0, 1), (-1, -1), 0.25, GRID_GREY),
        ("TOPPADDING", (0, 0), (-1, -1), CELL_PADDING_Y),
        ("BOTTOMPADDING", (0, 0), (-1, -1), CELL_PADDING_Y),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING_X),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING_X),
    ]
    commands += [
        ("BACKGROUND", (0, row), (-1, row), STRIPE_FILL) for row in range(2, body_rows + 1, 2)
    ]
    if with_total:
        commands += [
            ("SPAN", (0, -1), (4, -1)),
            ("LINEABOVE", (0, -1), (-1, -1), 0.75, colors.black),
            ("BACKGROUND", (0, -1), (-1, -1), HEADER_FILL),
        ]
    return TableStyle(commands)


def _text(value: str) -> str:
    """Plain text made safe for reportlab's paragraph markup."""
    return escape(value) if value else NO_VALUE
