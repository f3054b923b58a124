"""Render the default invoice PDF: an AIA G702-style application and a G703 continuation sheet.

`render_invoice(sheet)` is pure: it reads only the `InvoiceSheet`, touches no database, Slack or
file, mutates no global state, and returns the PDF bytes. Page 1 (portrait letter) is the
application for payment: header, the nine numbered lines, the change-order summary and the
signature block. The continuation sheet starts on a new landscape-letter page; its column header
repeats on every page. Every page has a footer with the invoice and application numbers and
"Page X of Y". Only the core Helvetica fonts are used (WinAnsi: "·", "–", "—", "’", "é" work).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial
from typing import Any
from xml.sax.saxutils import escape

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    LongTable,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from pdf.documents import ZERO, G702Header, G702Summary, G703Line, InvoiceSheet
from pdf.formatting import format_date, format_money, format_percent

# reportlab reads this switch from its global settings whenever it writes a page stream and has no
# per-document option for it. ASCII85 only makes streams 7-bit clean, which a binary PDF does not
# need; without it files are about 25 % smaller and render a little faster. Set once, at import;
# it changes every reportlab document of the process in the same harmless way.
rl_config.useA85 = 0

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
GRID_GREY = colors.HexColor("#9A9A9A")
HEADER_FILL = colors.HexColor("#E6E9EE")
STRIPE_FILL = colors.HexColor("#F6F7F9")
TOTAL_FILL = colors.HexColor("#E6E9EE")
FOOTER_GREY = colors.HexColor("#555555")

PORTRAIT = letter
LANDSCAPE = landscape(letter)
MARGIN = 0.5 * inch
FOOTER_BAND = 0.25 * inch  # space kept free at the bottom of each page for the footer
BAND_HEIGHT = 0.75 * inch  # continuation sheet: identification band above the table
NO_VALUE = "—"
BOX_PADDING = 6.0  # reportlab's default left/right cell padding, used by the boxes on page 1

# G703 columns: letter and header markup (no-break spaces keep the formulas on one line).
G703_HEADERS: tuple[tuple[str, str], ...] = (
    ("A", "ITEM NO."),
    ("B", "DESCRIPTION OF WORK"),
    ("C", "SCHEDULED VALUE"),
    ("D", "WORK COMPLETED FROM PREVIOUS APPLICATION"),
    ("E", "WORK COMPLETED THIS PERIOD"),
    ("F", "MATERIALS PRESENTLY STORED (NOT IN D OR E)"),
    ("G", "TOTAL COMPLETED AND STORED TO DATE (D&nbsp;+&nbsp;E&nbsp;+&nbsp;F)"),
    ("H", "%&nbsp;(G&nbsp;÷&nbsp;C)"),
    ("I", "BALANCE TO FINISH (C&nbsp;–&nbsp;G)"),
    ("J", "RETAINAGE"),
)
G703_MONEY_COLUMNS = (2, 3, 4, 5, 6, 8, 9)
G703_PERCENT_COLUMN = 7
G703_HEADER_ROWS = 2  # the letter row and the title row, repeated on every page
G703_MIN_DESCRIPTION_WIDTH = 170.0
G703_FONT_SIZES = (7.5, 7.0, 6.5, 6.0, 5.5)  # tried in order until column B is wide enough
CELL_PADDING = 3.0
G703_MIN_ROW_PIECE = 24.0  # a row taller than a page is split, in pieces at least this tall


def _style(name: str, **overrides: Any) -> ParagraphStyle:
    """A Helvetica paragraph style; read-only once built."""
    settings: dict[str, Any] = {"fontName": FONT, "fontSize": 8, "leading": 10}
    settings.update(overrides)
    return ParagraphStyle(name, **settings)


TITLE_STYLE = _style("Title", fontName=FONT_BOLD, fontSize=14, leading=17)
SUBTITLE_STYLE = _style("Subtitle", fontSize=8, leading=10, textColor=FOOTER_GREY)
LABEL_STYLE = _style("Label", fontName=FONT_BOLD, fontSize=6.5, leading=8, textColor=FOOTER_GREY)
VALUE_STYLE = _style("Value", fontSize=8.5, leading=10.5)
LINE_STYLE = _style("Line", fontSize=8.5, leading=10.5)
LINE_BOLD_STYLE = _style("LineBold", fontName=FONT_BOLD, fontSize=8.5, leading=10.5)
BOX_TITLE_STYLE = _style("BoxTitle", fontName=FONT_BOLD, fontSize=8, leading=10)
SMALL_STYLE = _style("Small", fontSize=7.5, leading=9.5)


# ---------------------------------------------------------------------------------------------
# Public API


def render_invoice(sheet: InvoiceSheet) -> bytes:
    """Render `sheet` as the default invoice PDF (G702 page + G703 continuation) and return it.

    Pure and thread-safe: no I/O beyond an in-memory buffer, no global state changed per call.
    Money is shown with `format_money`, percentages with `format_percent`.
    """
    buffer = io.BytesIO()
    document = _build_document(buffer, sheet)
    flowables = [
        *_application_page(sheet),
        NextPageTemplate("continuation"),
        PageBreak(),
        _continuation_table(sheet.lines, LANDSCAPE[0] - 2 * MARGIN),
    ]
    canvas_maker = partial(_NumberedCanvas, footer_text=_footer_text(sheet))
    document.build(flowables, canvasmaker=canvas_maker)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Document, page templates, footer


class _NumberedCanvas(Canvas):
    """A canvas that holds finished pages until `save` so each footer can say "Page X of Y"."""

    def __init__(self, *args: Any, footer_text: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer_text = footer_text
        self._held_pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab's method name
        self._held_pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        page_count = len(self._held_pages)
        for page_number, page_state in enumerate(self._held_pages, start=1):
            self.__dict__.update(page_state)
            self._draw_footer(page_number, page_count)
            super().showPage()
        super().save()

    def _draw_footer(self, page_number: int, page_count: int) -> None:
        page_width = self._pagesize[0]
        baseline = MARGIN * 0.6
        self.saveState()
        self.setStrokeColor(GRID_GREY)
        self.setLineWidth(0.5)
        self.line(MARGIN, baseline + 9, page_width - MARGIN, baseline + 9)
        self.setFillColor(FOOTER_GREY)
        self.setFont(FONT, 7.5)
        page_label = f"Page {page_number} of {page_count}"
        label_width = stringWidth(page_label, FONT, 7.5)
        room = page_width - 2 * MARGIN - label_width - 24
        self.drawString(MARGIN, baseline, _fit(self._footer_text, FONT, 7.5, room))
        self.drawRightString(page_width - MARGIN, baseline, page_label)
        self.restoreState()


def _build_document(buffer: io.BytesIO, sheet: InvoiceSheet) -> BaseDocTemplate:
    """A doc with a portrait "application" template and a landscape "continuation" template."""
    document = BaseDocTemplate(
        buffer,
        pagesize=PORTRAIT,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=f"Invoice {sheet.invoice_number} · Application #{sheet.header.application_number}",
        subject=f"{sheet.header.project_name} · {sheet.header.subcontractor_name}",
        creator="invoice-backups",
        author="",
        invariant=1,
    )
    application_frame = _frame("application", PORTRAIT, top_band=0)
    continuation_frame = _frame("continuation", LANDSCAPE, top_band=BAND_HEIGHT)
    document.addPageTemplates(
        [
            PageTemplate("application", [application_frame], pagesize=PORTRAIT),
            PageTemplate(
                "continuation",
                [continuation_frame],
                pagesize=LANDSCAPE,
                onPage=partial(_draw_continuation_band, sheet=sheet),
            ),
        ]
    )
    return document


def _frame(frame_id: str, page_size: tuple[float, float], top_band: float) -> Frame:
    """The body frame of a page: inside the margins, above the footer, below an optional band."""
    width, height = page_size
    bottom = MARGIN + FOOTER_BAND
    return Frame(
        MARGIN,
        bottom,
        width - 2 * MARGIN,
        height - MARGIN - top_band - bottom,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id=frame_id,
    )


def _footer_text(sheet: InvoiceSheet) -> str:
    """Left part of the footer: which invoice and application the page belongs to."""
    return (
        f"Invoice {sheet.invoice_number or NO_VALUE} · "
        f"Application #{sheet.header.application_number or NO_VALUE} · "
        f"{sheet.header.project_name}"
    )


def _draw_continuation_band(
    canvas: Canvas, _document: BaseDocTemplate, sheet: InvoiceSheet
) -> None:
    """Identification band at the top of every continuation page (G703 "title block")."""
    header = sheet.header
    page_width, page_height = LANDSCAPE
    top = page_height - MARGIN
    left_room = (page_width - 2 * MARGIN) * 0.55
    canvas.saveState()
    canvas.setFont(FONT_BOLD, 12)
    canvas.drawString(MARGIN, top - 12, "CONTINUATION SHEET")
    canvas.setFont(FONT, 7.5)
    canvas.setFillColor(FOOTER_GREY)
    canvas.drawString(MARGIN, top - 23, "Attached to the application and certificate for payment")
    canvas.setFillColor(colors.black)
    canvas.setFont(FONT, 8)
    project = f"{header.project_name} ({header.project_number})"
    canvas.drawString(MARGIN, top - 35, _fit(f"Project: {project}", FONT, 8, left_room))
    right_lines = (
        f"Application no.: {header.application_number or NO_VALUE}",
        f"Invoice no.: {sheet.invoice_number or NO_VALUE}",
        f"Period: {format_date(header.period_start)} to {format_date(header.period_end)}",
    )
    right_edge = page_width - MARGIN
    for index, text in enumerate(right_lines):
        canvas.drawRightString(right_edge, top - 10 - 11 * index, text)
    canvas.setStrokeColor(colors.black)
    canvas.setLineWidth(0.8)
    rule_y = top - 43
    canvas.line(MARGIN, rule_y, right_edge, rule_y)
    canvas.restoreState()


# ---------------------------------------------------------------------------------------------
# Page 1: application for payment (G702)


def _application_page(sheet: InvoiceSheet) -> list[Flowable]:
    """Flowables of page 1: title, header block, the nine lines, change orders, signatures."""
    content_width = PORTRAIT[0] - 2 * MARGIN
    return [
        Paragraph("APPLICATION AND CERTIFICATE FOR PAYMENT", TITLE_STYLE),
        Paragraph("Subcontractor's application for payment · G702 / G703 format", SUBTITLE_STYLE),
        Spacer(1, 8),
        _header_block(sheet, content_width),
        Spacer(1, 10),
        _section_title("SUBCONTRACTOR'S APPLICATION FOR PAYMENT", content_width),
        _summary_lines(sheet.summary, content_width),
        Spacer(1, 12),
        _change_orders_and_signature(sheet, content_width),
        Spacer(1, 12),
        _certificate_block(content_width),
    ]


def _header_block(sheet: InvoiceSheet, width: float) -> Table:
    """Two columns of labelled fields: parties and contract (left), project and invoice (right)."""
    header = sheet.header
    sub_from = _text(header.subcontractor_name)
    if header.subcontractor_address.strip():
        sub_from += "<br/>" + _text(header.subcontractor_address)
    left_fields = (
        ("TO (GENERAL CONTRACTOR)", _text(header.to_general_contractor)),
        ("FROM (SUBCONTRACTOR)", sub_from),
        ("CONTRACT FOR", _text(header.contract_for)),
        ("CONTRACT DATE", format_date(header.contract_date)),
    )
    right_fields = (
        ("PROJECT", _text(header.project_name)),
        ("PROJECT NO.", _text(header.project_number)),
        ("APPLICATION NO.", _text(header.application_number)),
        ("PERIOD FROM", format_date(header.period_start)),
        ("PERIOD TO", format_date(header.period_end)),
        ("INVOICE NO.", _text(sheet.invoice_number)),
        ("STATUS", _text(sheet.status)),
        ("BILLING DATE", format_date(sheet.billing_date)),
    )
    gap = 14
    half = (width - gap) / 2
    left = _field_table(left_fields, half, label_width=105)
    right = _field_table(right_fields, half, label_width=85)
    outer = Table([[left, "", right]], colWidths=[half, gap, half])
    outer.setStyle(_no_padding_style() + [("VALIGN", (0, 0), (-1, -1), "TOP")])
    return outer


def _field_table(fields: Sequence[tuple[str, str]], width: float, label_width: float) -> Table:
    """Label/value rows; values are already-escaped paragraph markup."""
    rows = [
        [Paragraph(label, LABEL_STYLE), Paragraph(value or NO_VALUE, VALUE_STYLE)]
        for label, value in fields
    ]
    table = Table(rows, colWidths=[label_width, width - label_width])
    table.setStyle(
        [
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 4),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ("TOPPADDING", (0, 0), (0, -1), 3),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID_GREY),
        ]
    )
    return table


def _section_title(text: str, width: float) -> Table:
    """A filled heading bar."""
    table = Table([[Paragraph(text, BOX_TITLE_STYLE)]], colWidths=[width])
    table.setStyle(
        [
            ("BACKGROUND", (0, 0), (-1, -1), HEADER_FILL),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ("LEFTPADDING", (0, 0), (-1, -1), 4),
        ]
    )
    return table


def _summary_lines(summary: G702Summary, width: float) -> Table:
    """The nine numbered G702 lines; retainage a/b amounts sit in an inner column."""
    number_width, inner_width, amount_width = 18.0, 95.0, 105.0
    label_width = width - number_width - inner_width - amount_width
    money = format_money
    completed_pct = format_percent(summary.completed_work_retainage_percent)
    stored_pct = format_percent(summary.stored_materials_retainage_percent)
    rows: list[list[Any]] = [
        ["1.", _line("ORIGINAL CONTRACT SUM"), "", money(summary.original_contract_sum)],
        [
            "2.",
            _line("Net change by change orders"),
            "",
            money(summary.net_change_by_change_orders),
        ],
        [
            "3.",
            _line("CONTRACT SUM TO DATE (Line 1 ± 2)"),
            "",
            money(summary.contract_sum_to_date),
        ],
        [
            "4.",
            _line("TOTAL COMPLETED &amp; STORED TO DATE (Column G on G703)"),
            "",
            money(summary.total_completed_and_stored_to_date),
        ],
        ["5.", _line("RETAINAGE:"), "", ""],
        [
            "",
            _line(f"a. {completed_pct} of completed work (Columns D + E on G703)"),
            money(summary.completed_work_retainage_amount),
            "",
        ],
        [
            "",
            _line(f"b. {stored_pct} of stored material (Column F on G703)"),
            money(summary.stored_materials_retainage_amount),
            "",
        ],
        [
            "",
            _line("Total retainage (Lines 5a + 5b, or total in Column J of G703)"),
            "",
            money(summary.total_retainage),
        ],
        [
            "6.",
            _line("TOTAL EARNED LESS RETAINAGE (Line 4 minus Line 5 total)"),
            "",
            money(summary.total_earned_less_retainage),
        ],
        [
            "7.",
            _line("LESS PREVIOUS CERTIFICATES FOR PAYMENT (Line 6 from prior certificate)"),
            "",
            money(summary.less_previous_certificates_for_payment),
        ],
        [
            "8.",
            _line("CURRENT PAYMENT DUE", bold=True),
            "",
            money(summary.current_payment_due),
        ],
        [
            "9.",
            _line("BALANCE TO FINISH, INCLUDING RETAINAGE (Line 3 minus Line 6)"),
            "",
            money(summary.balance_to_finish_including_retainage),
        ],
    ]
    payment_row = 10
    table = Table(rows, colWidths=[number_width, label_width, inner_width, amount_width])
    table.setStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, 8.5, 10.5),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (2, 0), (-1, -1), "RIGHT"),
            ("TOPPADDING", (0, 0), (-1, -1), 3),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ("LEFTPADDING", (0, 0), (1, -1), 2),
            ("LINEBELOW", (0, 0), (-1, -1), 0.25, GRID_GREY),
            ("LINEBELOW", (2, 5), (2, 6), 0.6, colors.black),
            ("FONT", (0, payment_row), (-1, payment_row), FONT_BOLD, 9.5, 11.5),
            ("BACKGROUND", (0, payment_row), (-1, payment_row), HEADER_FILL),
            ("BOX", (3, payment_row), (3, payment_row), 1.0, colors.black),
        ]
    )
    return table


def _change_orders_and_signature(sheet: InvoiceSheet, width: float) -> Table:
    """Change-order summary box (left) beside the subcontractor's signature (right)."""
    gap = 14
    box_width = (width - gap) * 0.5
    signature_width = width - gap - box_width
    outer = Table(
        [
            [
                _change_order_box(sheet.summary, box_width),
                "",
                _subcontractor_signature(sheet.header, signature_width),
            ]
        ],
        colWidths=[box_width, gap, signature_width],
    )
    outer.setStyle(_no_padding_style() + [("VALIGN", (0, 0), (-1, -1), "TOP")])
    return outer


def _change_order_box(summary: G702Summary, width: float) -> Table:
    """Approved in previous months / this month, additions and deductions, totals, net change."""
    amount_width = 72.0
    label_width = width - 2 * amount_width
    total_additions = summary.previous_change_order_additions + summary.new_change_order_additions
    total_deductions = (
        summary.previous_change_order_deductions + summary.new_change_order_deductions
    )
    net_change = total_additions - total_deductions
    rows: list[list[Any]] = [
        [_small("<b>CHANGE ORDER SUMMARY</b>"), "ADDITIONS", "DEDUCTIONS"],
        [
            _small("Total changes approved in previous months"),
            format_money(summary.previous_change_order_additions),
            format_money(summary.previous_change_order_deductions),
        ],
        [
            _small("Total approved this month"),
            format_money(summary.new_change_order_additions),
            format_money(summary.new_change_order_deductions),
        ],
        [_small("<b>TOTALS</b>"), format_money(total_additions), format_money(total_deductions)],
        [_small("<b>NET CHANGES BY CHANGE ORDER</b>"), format_money(net_change), ""],
    ]
    table = Table(rows, colWidths=[label_width, amount_width, amount_width])
    table.setStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, 7.5, 9.5),
            ("FONT", (1, 0), (-1, 0), FONT_BOLD, 6.5, 8),
            ("FONT", (1, 3), (-1, 4), FONT_BOLD, 7.5, 9.5),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
            ("INNERGRID", (0, 0), (-1, -1), 0.25, GRID_GREY),
            ("LINEABOVE", (0, 3), (-1, 3), 0.8, colors.black),
            ("SPAN", (1, 4), (2, 4)),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]
    )
    return table


def _subcontractor_signature(header: G702Header, width: float) -> Table:
    """The subcontractor's certification with signature and date lines."""
    statement = (
        "The undersigned subcontractor certifies that, to the best of its knowledge, the work "
        "covered by this application has been completed as the contract documents require, "
        "that it has paid for the work billed on earlier applications, and that the current "
        "payment shown is now due."
    )
    rows: list[list[Any]] = [
        [_small("<b>SUBCONTRACTOR'S CERTIFICATION</b>")],
        [_small(statement)],
        [_small(f"<b>Subcontractor:</b> {_text(header.subcontractor_name) or NO_VALUE}")],
        [_signature_line("Signature", "Date", width - 2 * BOX_PADDING)],
    ]
    table = Table(rows, colWidths=[width])
    table.setStyle(
        [
            ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]
    )
    return table


def _certificate_block(width: float) -> Table:
    """Architect's / general contractor's certificate for payment with signature lines."""
    statement = (
        "Based on the application and the continuation sheet, and on observation of the work, "
        "the undersigned certify that the work has progressed as indicated and that the "
        "subcontractor is entitled to payment of the amount certified."
    )
    half = width / 2
    rows: list[list[Any]] = [
        [_small("<b>ARCHITECT'S / GENERAL CONTRACTOR'S CERTIFICATE FOR PAYMENT</b>"), ""],
        [_small(statement), ""],
        [_signature_line("Amount certified", "", half - 2 * BOX_PADDING, date_width=0), ""],
        [
            _signature_line("Architect", "Date", half - 2 * BOX_PADDING),
            _signature_line("General contractor", "Date", half - 2 * BOX_PADDING),
        ],
    ]
    table = Table(rows, colWidths=[half, half])
    table.setStyle(
        [
            ("SPAN", (0, 0), (1, 0)),
            ("SPAN", (0, 1), (1, 1)),
            ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]
    )
    return table


def _signature_line(label: str, date_label: str, width: float, date_width: float = 70) -> Table:
    """ "Label: ______  Date: ______" as a tiny table with ruled blanks."""
    label_width = stringWidth(f"{label}:", FONT, 7.5) + 6
    date_label_width = stringWidth(f"{date_label}:", FONT, 7.5) + 8 if date_width else 0
    blank_width = width - label_width - date_label_width - date_width - 8
    cells: list[Any] = [f"{label}:", ""]
    col_widths = [label_width, blank_width]
    if date_width:
        cells += [f"{date_label}:", ""]
        col_widths += [date_label_width, date_width]
    table = Table([cells], colWidths=col_widths, rowHeights=[24])
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 7.5, 9),
        ("VALIGN", (0, 0), (-1, -1), "BOTTOM"),
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ("LINEBELOW", (1, 0), (1, 0), 0.6, colors.black),
    ]
    if date_width:
        style += [
            ("ALIGN", (2, 0), (2, 0), "RIGHT"),
            ("RIGHTPADDING", (2, 0), (2, 0), 3),
            ("LINEBELOW", (3, 0), (3, 0), 0.6, colors.black),
        ]
    table.setStyle(style)
    return table


# ---------------------------------------------------------------------------------------------
# Continuation sheet (G703)


def _continuation_table(lines: Sequence[G703Line], width: float) -> LongTable:
    """The G703 table: two repeated header rows, one row per line, then the grand total."""
    body = [_g703_cells(line) for line in lines]
    totals = _g703_totals(lines)
    font_size, col_widths = _g703_layout(body + [totals], width)
    leading = font_size + 2
    description_style = _style("G703Description", fontSize=font_size, leading=leading)
    header_style = _style(
        "G703Header",
        fontName=FONT_BOLD,
        fontSize=font_size - 1,
        leading=font_size + 0.5,
        alignment=TA_CENTER,
    )
    letter_row = [letter_key for letter_key, _ in G703_HEADERS]
    title_row = [Paragraph(title, header_style) for _, title in G703_HEADERS]
    rows: list[list[Any]] = [letter_row, title_row]
    item_width, description_width = col_widths[0], col_widths[1]
    for cells in body:
        item = _table_cell(cells[0], description_style, item_width)
        description = _table_cell(cells[1], description_style, description_width)
        rows.append([item, description, *cells[2:]])
    total_row = len(rows)
    rows.append(["", Paragraph("<b>GRAND TOTAL</b>", description_style), *totals[2:]])
    table = LongTable(
        rows, colWidths=col_widths, repeatRows=G703_HEADER_ROWS, splitInRow=G703_MIN_ROW_PIECE
    )
    table.setStyle(TableStyle(_g703_style(font_size, leading, total_row)))
    return table


def _table_cell(text: str, style: ParagraphStyle, column_width: float) -> str | Paragraph:
    """`text` as a plain string when it fits on one line (much faster), else a wrapping Paragraph.

    Plain strings are drawn literally, so only the Paragraph needs its markup escaped.
    """
    room = column_width - 2 * CELL_PADDING
    if "\n" not in text and stringWidth(text, style.fontName, style.fontSize) <= room:
        return text
    return Paragraph(_text(text), style)


def _g703_cells(line: G703Line) -> list[str]:
    """Display strings of one line, columns A to J (description still raw text)."""
    percent = NO_VALUE if line.scheduled_value == ZERO else format_percent(line.percent_complete)
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


def _g703_totals(lines: Sequence[G703Line]) -> list[str]:
    """Display strings of the grand-total row; H is total G ÷ total C ("—" when C sums to 0)."""

    def total(column: Callable[[G703Line], Decimal]) -> Decimal:
        return sum((column(line) for line in lines), ZERO)

    scheduled = total(lambda line: line.scheduled_value)
    completed = total(lambda line: line.total_completed_and_stored_to_date)
    percent = NO_VALUE if scheduled == ZERO else format_percent(completed / scheduled * 100)
    return [
        "",
        "GRAND TOTAL",
        format_money(scheduled),
        format_money(total(lambda line: line.work_completed_from_previous_application)),
        format_money(total(lambda line: line.work_completed_this_period)),
        format_money(total(lambda line: line.materials_presently_stored)),
        format_money(completed),
        percent,
        format_money(total(lambda line: line.balance_to_finish)),
        format_money(total(lambda line: line.retainage)),
    ]


def _g703_layout(rows: Sequence[Sequence[str]], width: float) -> tuple[float, list[float]]:
    """Font size and column widths so every amount fits on one line and B keeps enough room.

    Money columns share one width, sized to the widest amount (bold, as in the total row); the
    item column is sized to the longest item number within limits. Column B takes the rest.
    """
    widest_money = max(len(row[index]) for row in rows for index in G703_MONEY_COLUMNS)
    money_samples = {row[index] for row in rows for index in G703_MONEY_COLUMNS}
    money_samples = {text for text in money_samples if len(text) >= widest_money - 1}
    item_numbers = [row[0] for row in rows]
    for font_size in G703_FONT_SIZES:
        money_text = max(stringWidth(text, FONT_BOLD, font_size) for text in money_samples)
        money_width = max(money_text + 2 * CELL_PADDING + 2, 62.0)
        percent_width = max(stringWidth("100.00%", FONT, font_size) + 2 * CELL_PADDING + 2, 36.0)
        item_text = max((stringWidth(item, FONT, font_size) for item in item_numbers), default=0)
        item_width = min(max(item_text + 2 * CELL_PADDING + 1, 30.0), 64.0)
        fixed = item_width + percent_width + money_width * len(G703_MONEY_COLUMNS)
        description_width = width - fixed
        if description_width >= G703_MIN_DESCRIPTION_WIDTH or font_size == G703_FONT_SIZES[-1]:
            break
    widths = [money_width] * len(G703_HEADERS)
    widths[0], widths[1], widths[G703_PERCENT_COLUMN] = item_width, description_width, percent_width
    return font_size, widths


def _g703_style(font_size: float, leading: float, total_row: int) -> list[tuple[Any, ...]]:
    """Table style of the continuation sheet: grid, shaded header, striped rows, bold total."""
    last_header = G703_HEADER_ROWS - 1
    return [
        ("FONT", (0, 0), (-1, -1), FONT, font_size, leading),
        ("FONT", (0, 0), (-1, 0), FONT_BOLD, font_size - 1, font_size),
        ("ALIGN", (0, 0), (-1, last_header), "CENTER"),
        ("VALIGN", (0, 0), (-1, last_header), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, last_header), HEADER_FILL),
        ("VALIGN", (0, G703_HEADER_ROWS), (-1, -1), "TOP"),
        ("ALIGN", (2, G703_HEADER_ROWS), (-1, -1), "RIGHT"),
        ("ROWBACKGROUNDS", (0, G703_HEADER_ROWS), (-1, total_row - 1), [None, STRIPE_FILL]),
        ("GRID", (0, 0), (-1, -1), 0.25, GRID_GREY),
        ("BOX", (0, 0), (-1, -1), 0.8, colors.black),
        ("LINEBELOW", (0, last_header), (-1, last_header), 0.8, colors.black),
        ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("FONT", (0, total_row), (-1, total_row), FONT_BOLD, font_size, leading),
        ("BACKGROUND", (0, total_row), (-1, total_row), TOTAL_FILL),
        ("LINEABOVE", (0, total_row), (-1, total_row), 0.8, colors.black),
    ]


# ---------------------------------------------------------------------------------------------
# Small helpers


def _text(value: str) -> str:
    """User text as paragraph markup: `&`, `<`, `>` escaped, line breaks kept."""
    return escape(value.strip()).replace("\r\n", "\n").replace("\n", "<br/>")


def _line(markup: str, bold: bool = False) -> Paragraph:
    """A G702 line label."""
    return Paragraph(markup, LINE_BOLD_STYLE if bold else LINE_STYLE)


def _small(markup: str) -> Paragraph:
    """Small body text for the boxes on page 1."""
    return Paragraph(markup, SMALL_STYLE)


def _fit(text: str, font: str, size: float, max_width: float) -> str:
    """`text` cut with "…" so that it fits `max_width` on one line."""
    if stringWidth(text, font, size) <= max_width:
        return text
    text = text[: int(max_width / (0.2 * size))]  # no Helvetica glyph is narrower than 0.2 em
    while text and stringWidth(text + "…", font, size) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


def _no_padding_style() -> list[tuple[Any, ...]]:
    """Style commands for a layout-only table."""
    return [
        ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ("RIGHTPADDING", (0, 0), (-1, -1), 0),
        ("TOPPADDING", (0, 0), (-1, -1), 0),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
    ]


__all__ = ["render_invoice"]
