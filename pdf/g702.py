"""Page 1 of the default invoice PDF: the AIA G702-style application and certificate for payment.

`fitted_application_blocks(sheet)` lays the page out (portrait letter) as `Block`s of known
height: title, header fields, the nine numbered lines, the change-order summary beside the
subcontractor's certification, and the architect's / general contractor's certificate. Header
values are cut to at most 8 lines, fewer if needed, so the page always fits; `draw_application`
then paints the blocks top-down onto a `Page`. The footer is not drawn here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pdf.documents import G702Header, G702Summary, InvoiceSheet
from pdf.formatting import format_date, format_money, format_percent
from pdf.invoice_layout import (
    BLACK,
    BODY_BOTTOM,
    FONT,
    FONT_BOLD,
    FOOTER_GREY,
    GRID_GREY,
    HEADER_FILL,
    MARGIN,
    NO_VALUE,
    PORTRAIT,
    Page,
    Style,
    cap,
    fixed_lines,
    middle_baseline,
    text_width,
    wrap,
)

# Page 1 geometry (points).
CONTENT_WIDTH = PORTRAIT[0] - 2 * MARGIN
PAGE_ONE_ROOM = PORTRAIT[1] - MARGIN - BODY_BOTTOM
COLUMN_GAP = 14.0
HALF_WIDTH = (CONTENT_WIDTH - COLUMN_GAP) / 2  # header columns and the two boxes side by side
BOX_PADDING = 6.0  # left/right padding inside the boxes
BOX_PADDING_Y = 2.5  # top/bottom padding inside the boxes
FIELD_PADDING_RIGHT = 4.0  # header fields
FIELD_PADDING_Y = 1.5
FIELD_LABEL_PADDING_TOP = 3.0
HEADER_VALUE_MAX_LINES = 8  # a longer header value is cut (to fewer lines if page 1 needs it)
SUMMARY_COLUMNS = (18.0, CONTENT_WIDTH - 18.0 - 95.0 - 105.0, 95.0, 105.0)
SUMMARY_PADDING_Y = 3.0
SUMMARY_PADDING_LEFT = 2.0  # number and label columns
CHANGE_ORDER_AMOUNT_WIDTH = 72.0
SIGNATURE_ROW_HEIGHT = 24.0 + 2 * BOX_PADDING_Y
CERTIFICATE_TITLE_HEIGHT = 12.0 + 2 * BOX_PADDING_Y

TITLE_STYLE = Style(FONT_BOLD, 14, 17)
SUBTITLE_STYLE = Style(FONT, 8, 10, FOOTER_GREY)
LABEL_STYLE = Style(FONT_BOLD, 6.5, 8, FOOTER_GREY)
VALUE_STYLE = Style(FONT, 8.5, 10.5)
SECTION_STYLE = Style(FONT_BOLD, 8, 10)
LINE_BOLD_STYLE = Style(FONT_BOLD, 8.5, 10.5)
PAYMENT_STYLE = Style(FONT_BOLD, 9.5, 11.5)
SMALL_STYLE = Style(FONT, 7.5, 9.5)
SMALL_BOLD_STYLE = Style(FONT_BOLD, 7.5, 9.5)
COLUMN_HEADING_STYLE = Style(FONT_BOLD, 6.5, 8)
SIGNATURE_STYLE = Style(FONT, 7.5, 9)

# The nine lines: number, label and the G702Summary field shown; {completed} and {stored} are
# the retainage percentages.
SUMMARY_LINES: tuple[tuple[str, str, str], ...] = (
    ("1.", "ORIGINAL CONTRACT SUM", "original_contract_sum"),
    ("2.", "Net change by change orders", "net_change_by_change_orders"),
    ("3.", "CONTRACT SUM TO DATE (Line 1 ± 2)", "contract_sum_to_date"),
    (
        "4.",
        "TOTAL COMPLETED & STORED TO DATE (Column G on G703)",
        "total_completed_and_stored_to_date",
    ),
    ("5.", "RETAINAGE:", ""),
    (
        "",
        "a. {completed} of completed work (Columns D + E on G703)",
        "completed_work_retainage_amount",
    ),
    ("", "b. {stored} of stored material (Column F on G703)", "stored_materials_retainage_amount"),
    ("", "Total retainage (Lines 5a + 5b, or total in Column J of G703)", "total_retainage"),
    (
        "6.",
        "TOTAL EARNED LESS RETAINAGE (Line 4 minus Line 5 total)",
        "total_earned_less_retainage",
    ),
    (
        "7.",
        "LESS PREVIOUS CERTIFICATES FOR PAYMENT (Line 6 from prior certificate)",
        "less_previous_certificates_for_payment",
    ),
    ("8.", "CURRENT PAYMENT DUE", "current_payment_due"),
    (
        "9.",
        "BALANCE TO FINISH, INCLUDING RETAINAGE (Line 3 minus Line 6)",
        "balance_to_finish_including_retainage",
    ),
)
SUMMARY_INNER_ROWS = (5, 6)  # 5a and 5b: the amount in the inner column, ruled off
SUMMARY_PAYMENT_ROW = 10  # line 8: shaded, bold, its amount boxed
SUBCONTRACTOR_STATEMENT = (
    "The undersigned subcontractor certifies that, to the best of its knowledge, the work "
    "covered by this application has been completed as the contract documents require, "
    "that it has paid for the work billed on earlier applications, and that the current "
    "payment shown is now due."
)
CERTIFICATE_STATEMENT = (
    "Based on the application and the continuation sheet, and on observation of the work, "
    "the undersigned certify that the work has progressed as indicated and that the "
    "subcontractor is entitled to payment of the amount certified."
)
SUBCONTRACTOR_LABEL = "Subcontractor: "


@dataclass(frozen=True)
class Block:
    """A part of page 1 with a known height; `paint(page, top)` draws it below `top`."""

    height: float
    paint: Callable[[Page, float], None]


def fitted_application_blocks(sheet: InvoiceSheet) -> list[Block]:
    """The blocks of page 1, header values cut to as many lines as still fit one page."""
    for max_lines in range(HEADER_VALUE_MAX_LINES, 1, -1):
        blocks = _application_blocks(sheet, max_lines)
        if sum(block.height for block in blocks) <= PAGE_ONE_ROOM:
            return blocks
    return _application_blocks(sheet, 1)


def draw_application(page: Page, blocks: Sequence[Block]) -> None:
    """Page 1's blocks one below the other from the top margin (the footer is drawn apart)."""
    top = PORTRAIT[1] - MARGIN
    for block in blocks:
        block.paint(page, top)
        top -= block.height


def _application_blocks(sheet: InvoiceSheet, max_lines: int) -> list[Block]:
    """Title, header, the nine lines, change orders beside the signature, certificate."""
    return [
        _line_block("APPLICATION AND CERTIFICATE FOR PAYMENT", TITLE_STYLE),
        _line_block("Subcontractor's application for payment · G702 / G703 format", SUBTITLE_STYLE),
        _space(8),
        _header_block(sheet, max_lines),
        _space(10),
        _section_title("SUBCONTRACTOR'S APPLICATION FOR PAYMENT"),
        _summary_block(sheet.summary),
        _space(12),
        _side_by_side(
            _change_order_box(sheet.summary), _subcontractor_signature(sheet.header, max_lines)
        ),
        _space(12),
        _certificate_block(),
    ]


def _space(height: float) -> Block:
    """Vertical space between blocks."""
    return Block(height, lambda _page, _top: None)


def _side_by_side(left: Block, right: Block) -> Block:
    """Two blocks with their tops aligned (each draws at its own x)."""

    def paint(page: Page, top: float) -> None:
        left.paint(page, top)
        right.paint(page, top)

    return Block(max(left.height, right.height), paint)


def _line_block(text: str, style: Style) -> Block:
    """One full-width line of fixed text."""

    def paint(page: Page, top: float) -> None:
        page.style(style)
        page.text(MARGIN, top - style.size, text)

    return Block(style.leading, paint)


def _section_title(text: str) -> Block:
    """A filled heading bar."""
    height = SECTION_STYLE.leading + 6

    def paint(page: Page, top: float) -> None:
        page.fill(HEADER_FILL, [(MARGIN, top - height, CONTENT_WIDTH, height)])
        page.style(SECTION_STYLE)
        page.text(MARGIN + 4, top - 3 - SECTION_STYLE.size, text)

    return Block(height, paint)


def _header_block(sheet: InvoiceSheet, max_lines: int) -> Block:
    """Two columns of labelled fields: parties and contract (left), project and invoice (right).
    A value is texts that each start a new line; empty, it shows "—"."""
    header = sheet.header
    sub_from = [header.subcontractor_name]
    if header.subcontractor_address.strip():
        sub_from.append(header.subcontractor_address)  # on its own lines, even without a name
    left = [
        ("TO (GENERAL CONTRACTOR)", [header.to_general_contractor]),
        ("FROM (SUBCONTRACTOR)", sub_from),
        ("CONTRACT FOR", [header.contract_for]),
        ("CONTRACT DATE", [format_date(header.contract_date)]),
    ]
    right = [
        ("PROJECT", [header.project_name]),
        ("PROJECT NO.", [header.project_number]),
        ("APPLICATION NO.", [header.application_number]),
        ("PERIOD FROM", [format_date(header.period_start)]),
        ("PERIOD TO", [format_date(header.period_end)]),
        ("INVOICE NO.", [sheet.invoice_number]),
        ("STATUS", [sheet.status]),
        ("BILLING DATE", [format_date(sheet.billing_date)]),
    ]
    columns = [(MARGIN, 105.0, left), (MARGIN + HALF_WIDTH + COLUMN_GAP, 85.0, right)]
    laid_out = [
        (x, label_width, [_field(label, texts, label_width, max_lines) for label, texts in fields])
        for x, label_width, fields in columns
    ]

    def paint(page: Page, top: float) -> None:
        for x, label_width, rows in laid_out:
            _draw_fields(page, rows, x, top, label_width)

    height = max(sum(row[2] for row in rows) for _, _, rows in laid_out)
    return Block(height, paint)


def _field(
    label: str, texts: Sequence[str], label_width: float, max_lines: int
) -> tuple[str, list[str], float]:
    """A header row: its label, value lines (at most `max_lines`) and height."""
    room = HALF_WIDTH - label_width - FIELD_PADDING_RIGHT
    value = [line for text in texts for line in wrap(text, VALUE_STYLE, room) or [""]]
    value = cap(value, max_lines, VALUE_STYLE, room) if any(value) else [NO_VALUE]
    label_height = FIELD_LABEL_PADDING_TOP + LABEL_STYLE.leading + FIELD_PADDING_Y
    return label, value, max(label_height, 2 * FIELD_PADDING_Y + len(value) * VALUE_STYLE.leading)


def _draw_fields(
    page: Page,
    rows: Sequence[tuple[str, list[str], float]],
    x: float,
    top: float,
    label_width: float,
) -> None:
    """Labels and values top-aligned in their rows, with a hairline below each row."""
    hairlines = []
    for label, value, height in rows:
        page.style(LABEL_STYLE)
        page.text(x, top - FIELD_LABEL_PADDING_TOP - LABEL_STYLE.size, label)
        page.style(VALUE_STYLE)
        page.paragraph(x + label_width, top - FIELD_PADDING_Y - VALUE_STYLE.size, value)
        top -= height
        hairlines.append((x, top, x + HALF_WIDTH, top))
    page.rules(GRID_GREY, 0.25, hairlines)


@dataclass(frozen=True)
class _FigureRow:
    """A row of a table of amounts on page 1: number, label lines, right-aligned figures."""

    number: str
    label: Sequence[str]
    figures: Sequence[str]  # one per figure column, "" for none
    styles: tuple[Style, Style]  # of the label, of the number and figures
    height: float


def _figure_row(
    number: str,
    label: str,
    figures: Sequence[str],
    styles: tuple[Style, Style],
    room: float,
    padding: float,
) -> _FigureRow:
    """A row with its label broken into lines `room` wide, `padding` above and below."""
    lines = fixed_lines(label, styles[0], room)
    height = max(len(lines) * styles[0].leading, styles[1].leading) + 2 * padding
    return _FigureRow(number, lines, figures, styles, height)


def _draw_figure_rows(
    page: Page,
    rows: Sequence[_FigureRow],
    top: float,
    lefts: tuple[float, float],
    rights: Sequence[float],
) -> list[float]:
    """Number (at `lefts[0]`), label (at `lefts[1]`) and figures (ending at `rights`) of each
    row, centred vertically in it. Returns the rows' top edges and the table's bottom edge."""
    edges = [top]
    for row in rows:
        bottom = edges[-1] - row.height
        label, figure = row.styles
        figure_baseline = middle_baseline(bottom, row.height, figure.leading, figure.size)
        label_height = len(row.label) * label.leading
        page.style(figure)
        page.text(lefts[0], figure_baseline, row.number)
        page.style(label)
        page.paragraph(
            lefts[1], middle_baseline(bottom, row.height, label_height, label.size), row.label
        )
        page.style(figure)
        for right, text in zip(rights, row.figures, strict=True):
            page.text_right(right, figure_baseline, text)
        edges.append(bottom)
    return edges


def _summary_block(summary: G702Summary) -> Block:
    """The nine numbered lines as a ruled table; line 8 (payment due) shaded, its amount boxed."""
    number_width, label_width, inner_width, amount_width = SUMMARY_COLUMNS
    room = label_width - SUMMARY_PADDING_LEFT - BOX_PADDING
    percents = {
        "completed": format_percent(summary.completed_work_retainage_percent),
        "stored": format_percent(summary.stored_materials_retainage_percent),
    }
    rows = []
    for index, (number, label, field) in enumerate(SUMMARY_LINES):
        amount = format_money(getattr(summary, field)) if field else ""
        figures = (amount, "") if index in SUMMARY_INNER_ROWS else ("", amount)
        payment = index == SUMMARY_PAYMENT_ROW
        styles = (LINE_BOLD_STYLE, PAYMENT_STYLE) if payment else (VALUE_STYLE, VALUE_STYLE)
        rows.append(
            _figure_row(number, label.format(**percents), figures, styles, room, SUMMARY_PADDING_Y)
        )

    def paint(page: Page, top: float) -> None:
        label_left = MARGIN + number_width
        inner_left = label_left + label_width
        amount_left = inner_left + inner_width
        right = amount_left + amount_width
        payment = rows[SUMMARY_PAYMENT_ROW]
        payment_top = top - sum(row.height for row in rows[:SUMMARY_PAYMENT_ROW])
        payment_bottom = payment_top - payment.height
        page.fill(HEADER_FILL, [(MARGIN, payment_bottom, CONTENT_WIDTH, payment.height)])
        lefts = (MARGIN + SUMMARY_PADDING_LEFT, label_left + SUMMARY_PADDING_LEFT)
        rights = (amount_left - BOX_PADDING, right - BOX_PADDING)
        bottoms = _draw_figure_rows(page, rows, top, lefts, rights)[1:]
        page.rules(GRID_GREY, 0.25, [(MARGIN, y, right, y) for y in bottoms])
        underlines = [(inner_left, bottoms[i], amount_left, bottoms[i]) for i in SUMMARY_INNER_ROWS]
        page.rules(BLACK, 0.6, underlines)
        page.box(BLACK, 1.0, amount_left, payment_bottom, right, payment_top)

    return Block(sum(row.height for row in rows), paint)


def _change_order_box(summary: G702Summary) -> Block:
    """Approved in previous months / this month, additions and deductions, totals, net change."""
    additions = summary.previous_change_order_additions + summary.new_change_order_additions
    deductions = summary.previous_change_order_deductions + summary.new_change_order_deductions
    label_width = HALF_WIDTH - 2 * CHANGE_ORDER_AMOUNT_WIDTH
    room = label_width - 2 * BOX_PADDING
    money = format_money
    plain, bold = (SMALL_STYLE, SMALL_STYLE), (SMALL_BOLD_STYLE, SMALL_BOLD_STYLE)
    lines = [
        (
            "CHANGE ORDER SUMMARY",
            "ADDITIONS",
            "DEDUCTIONS",
            (SMALL_BOLD_STYLE, COLUMN_HEADING_STYLE),
        ),
        (
            "Total changes approved in previous months",
            money(summary.previous_change_order_additions),
            money(summary.previous_change_order_deductions),
            plain,
        ),
        (
            "Total approved this month",
            money(summary.new_change_order_additions),
            money(summary.new_change_order_deductions),
            plain,
        ),
        ("TOTALS", money(additions), money(deductions), bold),
        ("NET CHANGES BY CHANGE ORDER", "", money(additions - deductions), bold),  # spans both
    ]
    rows = [
        _figure_row("", label, figures, styles, room, BOX_PADDING_Y)
        for label, *figures, styles in lines
    ]
    totals_row, net_row = 3, 4

    def paint(page: Page, top: float) -> None:
        left, right = MARGIN, MARGIN + HALF_WIDTH
        amount_left = left + label_width
        middle = amount_left + CHANGE_ORDER_AMOUNT_WIDTH
        page.fill(HEADER_FILL, [(left, top - rows[0].height, HALF_WIDTH, rows[0].height)])
        rights = (middle - BOX_PADDING, right - BOX_PADDING)
        edges = _draw_figure_rows(page, rows, top, (left, left + BOX_PADDING), rights)
        bottom = edges[-1]
        grid = [(left, edge, right, edge) for edge in edges[1:-1]]
        grid += [(amount_left, bottom, amount_left, top), (middle, edges[net_row], middle, top)]
        page.rules(GRID_GREY, 0.25, grid)
        page.rules(BLACK, 0.8, [(left, edges[totals_row], right, edges[totals_row])])
        page.box(BLACK, 0.8, left, bottom, right, top)

    return Block(sum(row.height for row in rows), paint)


def _subcontractor_signature(header: G702Header, max_lines: int) -> Block:
    """The subcontractor's certification with its name and signature and date lines."""
    left = MARGIN + HALF_WIDTH + COLUMN_GAP
    room = HALF_WIDTH - 2 * BOX_PADDING
    label_width = text_width(SUBCONTRACTOR_LABEL, SMALL_BOLD_STYLE)
    name = wrap(header.subcontractor_name, SMALL_STYLE, room - label_width) or [NO_VALUE]
    name = cap(name, max_lines, SMALL_STYLE, room - label_width)
    name_height = len(name) * SMALL_STYLE.leading + 2 * BOX_PADDING_Y
    title_height = SMALL_STYLE.leading + 2 * BOX_PADDING_Y
    box = _certification_box(
        left, HALF_WIDTH, "SUBCONTRACTOR'S CERTIFICATION", title_height, SUBCONTRACTOR_STATEMENT
    )
    height = box.height + name_height + SIGNATURE_ROW_HEIGHT

    def paint(page: Page, top: float) -> None:
        x = left + BOX_PADDING
        box.paint(page, top)
        name_baseline = top - box.height - BOX_PADDING_Y - SMALL_STYLE.size
        page.style(SMALL_BOLD_STYLE)
        page.text(x, name_baseline, SUBCONTRACTOR_LABEL)
        page.style(SMALL_STYLE)
        page.paragraph(x + label_width, name_baseline, name)  # wrapped lines under the first
        _draw_signature_line(page, x, top - height, "Signature", "Date", room)
        page.box(BLACK, 0.8, left, top - height, left + HALF_WIDTH, top)

    return Block(height, paint)


def _certificate_block() -> Block:
    """Architect's / general contractor's certificate for payment with signature lines."""
    title = "ARCHITECT'S / GENERAL CONTRACTOR'S CERTIFICATE FOR PAYMENT"
    box = _certification_box(
        MARGIN, CONTENT_WIDTH, title, CERTIFICATE_TITLE_HEIGHT, CERTIFICATE_STATEMENT
    )
    height = box.height + 2 * SIGNATURE_ROW_HEIGHT

    def paint(page: Page, top: float) -> None:
        x, half = MARGIN + BOX_PADDING, CONTENT_WIDTH / 2
        line_width = half - 2 * BOX_PADDING
        box.paint(page, top)
        row_bottom = top - box.height - SIGNATURE_ROW_HEIGHT
        _draw_signature_line(page, x, row_bottom, "Amount certified", "", line_width)
        row_bottom -= SIGNATURE_ROW_HEIGHT
        _draw_signature_line(page, x, row_bottom, "Architect", "Date", line_width)
        _draw_signature_line(page, x + half, row_bottom, "General contractor", "Date", line_width)
        page.box(BLACK, 0.8, MARGIN, top - height, MARGIN + CONTENT_WIDTH, top)

    return Block(height, paint)


def _certification_box(
    left: float, width: float, title: str, title_height: float, statement: str
) -> Block:
    """The top of a certification box: its shaded title row (the title at the row's bottom
    padding) and its statement. The caller draws the rest and the outline."""
    lines = fixed_lines(statement, SMALL_STYLE, width - 2 * BOX_PADDING)
    statement_height = len(lines) * SMALL_STYLE.leading + 2 * BOX_PADDING_Y

    def paint(page: Page, top: float) -> None:
        x, size = left + BOX_PADDING, SMALL_STYLE.size
        page.fill(HEADER_FILL, [(left, top - title_height, width, title_height)])
        page.style(SMALL_BOLD_STYLE)
        title_bottom = top - title_height + BOX_PADDING_Y
        page.text(x, title_bottom + SMALL_STYLE.leading - size, title)
        page.style(SMALL_STYLE)
        page.paragraph(x, top - title_height - BOX_PADDING_Y - size, lines)

    return Block(title_height + statement_height, paint)


def _draw_signature_line(
    page: Page, x: float, row_bottom: float, label: str, date_label: str, width: float
) -> None:
    """ "Label: ______  Date: ______" with ruled blanks at the bottom of a signature row; no
    date part when `date_label` is empty."""
    date_width = 70.0 if date_label else 0.0
    label_width = text_width(f"{label}:", SIGNATURE_STYLE) + 6
    date_label_width = text_width(f"{date_label}:", SIGNATURE_STYLE) + 8 if date_label else 0.0
    blank_width = width - label_width - date_label_width - date_width - 8
    rule_y = row_bottom + BOX_PADDING_Y
    baseline = rule_y + 1 + SIGNATURE_STYLE.leading - SIGNATURE_STYLE.size
    page.style(SIGNATURE_STYLE)
    page.text(x, baseline, f"{label}:")
    blank_left = x + label_width
    rules = [(blank_left, rule_y, blank_left + blank_width, rule_y)]
    if date_label:
        date_left = blank_left + blank_width + date_label_width
        page.text_right(date_left - 3, baseline, f"{date_label}:")
        rules.append((date_left, rule_y, date_left + date_width, rule_y))
    page.rules(BLACK, 0.6, rules)


__all__ = ["Block", "draw_application", "fitted_application_blocks"]
