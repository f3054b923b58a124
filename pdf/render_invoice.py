"""Render the default invoice PDF: an AIA G702-style application and a G703 continuation sheet.

`render_invoice(sheet)` is pure: it reads only the `InvoiceSheet`, touches no database, Slack or
file, mutates no global state, and returns the PDF bytes. Page 1 (portrait letter) is the
application for payment: header, the nine numbered lines, the change-order summary and the
signature block. The continuation sheet starts on a new landscape-letter page; its column header
repeats on every page. Every page has a footer with the invoice and application numbers and
"Page X of Y". Only the core Helvetica fonts are used (WinAnsi: "·", "–", "—", "’", "é" work;
reportlab draws other characters from its substitute fonts).

Both parts are fixed forms, drawn with reportlab's public canvas calls: text is wrapped with
`simpleSplit` (a word wider than its column is cut with `wordSplit`) and each page's text goes
into one text object; fills and rules are paths. Page 1 always fits one page: header values are
cut to at most 8 lines, fewer if needed. The continuation rows are measured and put on pages
before anything is drawn, so "Page X of Y" takes a single pass.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.textsplit import wordSplit
from reportlab.lib.units import inch
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from pdf.documents import ZERO, G702Header, G702Summary, G703Line, InvoiceSheet
from pdf.formatting import format_date, format_money, format_percent

# reportlab reads this documented setting whenever it writes a page stream and has no
# per-document option for it. ASCII85 only makes streams 7-bit clean, which a binary PDF does not
# need; without it files are about 25 % smaller and render a little faster. Set once, at import;
# it changes every reportlab document of the process in the same harmless way.
rl_config.useA85 = 0

FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"
BLACK = colors.black
GRID_GREY = colors.HexColor("#9A9A9A")
HEADER_FILL = colors.HexColor("#E6E9EE")
STRIPE_FILL = colors.HexColor("#F6F7F9")
FOOTER_GREY = colors.HexColor("#555555")

PORTRAIT = letter
LANDSCAPE = landscape(letter)
MARGIN = 0.5 * inch
FOOTER_BAND = 0.25 * inch  # space kept free at the bottom of each page for the footer
BAND_HEIGHT = 0.75 * inch  # continuation sheet: identification band above the table
BODY_BOTTOM = MARGIN + FOOTER_BAND  # lowest point of the page body
NO_VALUE = "—"
ELLIPSIS = "…"

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

# G703 columns: letter and title.
G703_HEADERS: tuple[tuple[str, str], ...] = (
    ("A", "ITEM NO."),
    ("B", "DESCRIPTION OF WORK"),
    ("C", "SCHEDULED VALUE"),
    ("D", "WORK COMPLETED FROM PREVIOUS APPLICATION"),
    ("E", "WORK COMPLETED THIS PERIOD"),
    ("F", "MATERIALS PRESENTLY STORED (NOT IN D OR E)"),
    ("G", "TOTAL COMPLETED AND STORED TO DATE (D + E + F)"),
    ("H", "% (G ÷ C)"),
    ("I", "BALANCE TO FINISH (C – G)"),
    ("J", "RETAINAGE"),
)
G703_MONEY_COLUMNS = (2, 3, 4, 5, 6, 8, 9)
G703_AMOUNTS = attrgetter(  # a G703Line's amounts in columns C to G, I and J
    "scheduled_value",
    "work_completed_from_previous_application",
    "work_completed_this_period",
    "materials_presently_stored",
    "total_completed_and_stored_to_date",
    "balance_to_finish",
    "retainage",
)
G703_PERCENT_COLUMN = 7
G703_MIN_DESCRIPTION_WIDTH = 170.0
G703_FONT_SIZES = (7.5, 7.0, 6.5, 6.0, 5.5)  # tried in order until column B is wide enough
CELL_PADDING = 3.0  # left/right
CELL_PADDING_Y = 2.0  # top/bottom
G703_MIN_ROW_PIECE = 24.0  # a row taller than a page is split, in pieces at least this tall
G703_TOP = LANDSCAPE[1] - MARGIN - BAND_HEIGHT  # top edge of the table on every page
G703_ROOM = G703_TOP - BODY_BOTTOM  # height of the table's space on a page
CONTINUATION_HEAD = "ContinuationHead"  # name of the form with the band and column titles


@dataclass(frozen=True)
class _Style:
    """Font, size, line spacing and colour of text."""

    font: str
    size: float
    leading: float
    color: Color = BLACK

    @property
    def font_key(self) -> tuple[str, float, float]:
        """What a text object's font setting holds: font, size, leading."""
        return self.font, self.size, self.leading


TITLE_STYLE = _Style(FONT_BOLD, 14, 17)
SUBTITLE_STYLE = _Style(FONT, 8, 10, FOOTER_GREY)
LABEL_STYLE = _Style(FONT_BOLD, 6.5, 8, FOOTER_GREY)
VALUE_STYLE = _Style(FONT, 8.5, 10.5)
SECTION_STYLE = _Style(FONT_BOLD, 8, 10)
LINE_BOLD_STYLE = _Style(FONT_BOLD, 8.5, 10.5)
PAYMENT_STYLE = _Style(FONT_BOLD, 9.5, 11.5)
SMALL_STYLE = _Style(FONT, 7.5, 9.5)
SMALL_BOLD_STYLE = _Style(FONT_BOLD, 7.5, 9.5)
COLUMN_HEADING_STYLE = _Style(FONT_BOLD, 6.5, 8)
SIGNATURE_STYLE = _Style(FONT, 7.5, 9)
FOOTER_STYLE = _Style(FONT, 7.5, 9, FOOTER_GREY)
BAND_TITLE_STYLE = _Style(FONT_BOLD, 12, 14)
BAND_STYLE = _Style(FONT, 8, 10)


# ---------------------------------------------------------------------------------------------
# Text: widths, wrapping, cutting


def _width(text: str, style: _Style) -> float:
    """Width of `text` in `style`, in points."""
    return stringWidth(text, style.font, style.size)


def _wrap(text: str, style: _Style, width: float) -> list[str]:
    """Lines of `text` at most `width` wide; "\\n" starts a new line, an empty text has none.

    Breaks at spaces (`simpleSplit`); a word wider than `width` is cut between characters
    (`wordSplit`). A one-line text that fits is returned as it is.
    """
    text = text.strip()
    if "\n" not in text and _width(text, style) <= width:
        return [text] if text else []
    lines: list[str] = []
    for line in simpleSplit(text, style.font, style.size, width):
        # simpleSplit only lets a line overrun `width` when it is a single word.
        if " " in line or _width(line, style) <= width:
            lines.append(line)
        else:
            lines += [piece for _, piece in wordSplit(line, width, style.font, style.size)]
    return lines


@functools.lru_cache(maxsize=512)
def _fixed_lines(text: str, style: _Style, width: float) -> tuple[str, ...]:
    """`_wrap` for the form's own texts (statements, labels, column titles), remembered: they
    are the same for almost every invoice."""
    return tuple(_wrap(text, style, width))


def _cap(lines: list[str], max_lines: int, style: _Style, width: float) -> list[str]:
    """`lines`, at most `max_lines` of them; a cut ends with "…"."""
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = _fit(kept[-1] + ELLIPSIS, style, width)
    return kept


def _fit(text: str, style: _Style, width: float) -> str:
    """`text` cut with "…" so that it fits `width` on one line."""
    if _width(text, style) <= width:
        return text
    # The longest prefix that fits with "…", by bisection; no WinAnsi Helvetica glyph is
    # narrower than 0.19 em, so no more characters than that can fit.
    fits, too_long = 0, min(len(text), int(width / (0.19 * style.size)) + 1)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if _width(text[:middle] + ELLIPSIS, style) <= width:
            fits = middle
        else:
            too_long = middle
    return text[:fits].rstrip() + ELLIPSIS


def _middle_baseline(bottom: float, height: float, content_height: float, size: float) -> float:
    """First baseline of text centred vertically in a cell with equal top and bottom padding."""
    return bottom + (height + content_height) / 2 - size


# ---------------------------------------------------------------------------------------------
# Drawing

Rect = tuple[float, float, float, float]  # x, y, width, height
Rule = tuple[float, float, float, float]  # x0, y0, x1, y1


class _Page:
    """One page being drawn. Fills and rules go straight to the canvas; text is collected in
    one text object (far cheaper than a canvas call per string) that `finish` draws on top."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self._text = canvas.beginText()
        self._style: _Style | None = None

    def fill(self, color: Color, rects: Sequence[Rect]) -> None:
        """Filled rectangles without outline."""
        if rects:
            path = self.canvas.beginPath()
            for x, y, width, height in rects:
                path.rect(x, y, width, height)
            self.canvas.setFillColor(color)
            self.canvas.drawPath(path, stroke=0, fill=1)

    def rules(
        self, color: Color, line_width: float, rules: Sequence[Rule], round_caps: bool = True
    ) -> None:
        """Straight lines; table rules have round caps and joins, others butt caps."""
        if rules:
            self._pen(color, line_width, round_caps)
            self.canvas.lines(rules)

    def box(
        self, color: Color, line_width: float, left: float, bottom: float, right: float, top: float
    ) -> None:
        """A rectangle's outline."""
        self._pen(color, line_width, round_caps=True)
        self.canvas.rect(left, bottom, right - left, top - bottom, stroke=1, fill=0)

    def _pen(self, color: Color, line_width: float, round_caps: bool) -> None:
        self.canvas.setStrokeColor(color)
        self.canvas.setLineWidth(line_width)
        self.canvas.setLineCap(1 if round_caps else 0)
        self.canvas.setLineJoin(1 if round_caps else 0)

    def style(self, style: _Style) -> None:
        """Font, size, leading and colour of the text that follows."""
        current = self._style
        if current is None or current.font_key != style.font_key:
            self._text.setFont(style.font, style.size, style.leading)
        if current is None or current.color != style.color:
            self._text.setFillColor(style.color)
        self._style = style

    def text(self, x: float, baseline: float, text: str) -> None:
        """`text` with its baseline starting at (x, baseline)."""
        if text:
            self._text.setTextOrigin(x, baseline)
            self._text.textLine(text)

    def text_right(self, right: float, baseline: float, text: str) -> None:
        """`text` ending at `right`."""
        if text and self._style:
            self.text(right - _width(text, self._style), baseline, text)

    def text_centred(self, centre: float, baseline: float, text: str) -> None:
        """`text` centred on `centre`."""
        if text and self._style:
            self.text(centre - _width(text, self._style) / 2, baseline, text)

    def paragraph(self, x: float, baseline: float, lines: Sequence[str]) -> None:
        """Left-aligned lines, the first on `baseline`, spaced by the style's leading."""
        if lines:
            self._text.setTextOrigin(x, baseline)
            for line in lines:
                self._text.textLine(line)

    def finish(self) -> None:
        """Draw the collected text (on top of everything else)."""
        self.canvas.drawText(self._text)


# ---------------------------------------------------------------------------------------------
# Public API


def render_invoice(sheet: InvoiceSheet) -> bytes:
    """Render `sheet` as the default invoice PDF (G702 page + G703 continuation) and return it.

    Pure and thread-safe: no I/O beyond an in-memory buffer, no global state changed per call
    (`_fixed_lines` remembers how fixed texts wrap).
    Money is shown with `format_money`, percentages with `format_percent`.
    """
    application = _fitted_application_blocks(sheet)
    continuation = _continuation_layout(sheet.lines)
    page_count = 1 + len(continuation.pages)
    footer_text = _footer_text(sheet)

    buffer = io.BytesIO()
    canvas = _new_canvas(buffer, sheet)
    page = _Page(canvas)
    top = PORTRAIT[1] - MARGIN
    for block in application:
        block.paint(page, top)
        top -= block.height
    _draw_footer(page, PORTRAIT[0], 1, page_count, footer_text)
    page.finish()
    canvas.showPage()
    canvas.setPageSize(LANDSCAPE)
    _define_continuation_head(canvas, sheet, continuation)
    for page_number, rows in enumerate(continuation.pages, start=2):
        page = _Page(canvas)
        _draw_g703_page(page, continuation, rows)
        _draw_footer(page, LANDSCAPE[0], page_number, page_count, footer_text)
        page.finish()
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------
# Document, footer, continuation band


def _new_canvas(buffer: io.BytesIO, sheet: InvoiceSheet) -> Canvas:
    """A deterministic (invariant) canvas with the document's metadata."""
    canvas = Canvas(buffer, pagesize=PORTRAIT, invariant=1)
    canvas.setTitle(
        f"Invoice {sheet.invoice_number} · Application #{sheet.header.application_number}"
    )
    canvas.setSubject(f"{sheet.header.project_name} · {sheet.header.subcontractor_name}")
    canvas.setCreator("invoice-backups")
    canvas.setAuthor("")
    canvas.setKeywords("")
    return canvas


def _footer_text(sheet: InvoiceSheet) -> str:
    """Left part of the footer: which invoice and application the page belongs to."""
    return (
        f"Invoice {sheet.invoice_number or NO_VALUE} · "
        f"Application #{sheet.header.application_number or NO_VALUE} · "
        f"{sheet.header.project_name}"
    )


def _draw_footer(
    page: _Page, page_width: float, page_number: int, page_count: int, footer_text: str
) -> None:
    """A rule, the invoice/application text and "Page X of Y" at the bottom of a page."""
    baseline = MARGIN * 0.6
    rule = (MARGIN, baseline + 9, page_width - MARGIN, baseline + 9)
    page.rules(GRID_GREY, 0.5, [rule], round_caps=False)
    page.style(FOOTER_STYLE)
    page_label = f"Page {page_number} of {page_count}"
    room = page_width - 2 * MARGIN - _width(page_label, FOOTER_STYLE) - 24
    page.text(MARGIN, baseline, _fit(footer_text, FOOTER_STYLE, room))
    page.text_right(page_width - MARGIN, baseline, page_label)


def _draw_continuation_band(page: _Page, sheet: InvoiceSheet) -> None:
    """Identification band at the top of every continuation page (G703 "title block")."""
    header = sheet.header
    page_width, page_height = LANDSCAPE
    top = page_height - MARGIN
    right_edge = page_width - MARGIN
    page.style(BAND_TITLE_STYLE)
    page.text(MARGIN, top - 12, "CONTINUATION SHEET")
    page.style(FOOTER_STYLE)
    page.text(MARGIN, top - 23, "Attached to the application and certificate for payment")
    page.style(BAND_STYLE)
    project = f"Project: {header.project_name} ({header.project_number})"
    page.text(MARGIN, top - 35, _fit(project, BAND_STYLE, (page_width - 2 * MARGIN) * 0.55))
    right_lines = (
        f"Application no.: {header.application_number or NO_VALUE}",
        f"Invoice no.: {sheet.invoice_number or NO_VALUE}",
        f"Period: {format_date(header.period_start)} to {format_date(header.period_end)}",
    )
    for index, text in enumerate(right_lines):
        page.text_right(right_edge, top - 10 - 11 * index, text)
    page.rules(BLACK, 0.8, [(MARGIN, top - 43, right_edge, top - 43)], round_caps=False)


# ---------------------------------------------------------------------------------------------
# Page 1: application for payment (G702)

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
class _Block:
    """A part of page 1 with a known height; `paint(page, top)` draws it below `top`."""

    height: float
    paint: Callable[[_Page, float], None]


def _fitted_application_blocks(sheet: InvoiceSheet) -> list[_Block]:
    """The blocks of page 1, header values cut to as many lines as still fit one page."""
    for max_lines in range(HEADER_VALUE_MAX_LINES, 1, -1):
        blocks = _application_blocks(sheet, max_lines)
        if sum(block.height for block in blocks) <= PAGE_ONE_ROOM:
            return blocks
    return _application_blocks(sheet, 1)


def _application_blocks(sheet: InvoiceSheet, max_lines: int) -> list[_Block]:
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


def _space(height: float) -> _Block:
    """Vertical space between blocks."""
    return _Block(height, lambda _page, _top: None)


def _side_by_side(left: _Block, right: _Block) -> _Block:
    """Two blocks with their tops aligned (each draws at its own x)."""

    def paint(page: _Page, top: float) -> None:
        left.paint(page, top)
        right.paint(page, top)

    return _Block(max(left.height, right.height), paint)


def _line_block(text: str, style: _Style) -> _Block:
    """One full-width line of fixed text."""

    def paint(page: _Page, top: float) -> None:
        page.style(style)
        page.text(MARGIN, top - style.size, text)

    return _Block(style.leading, paint)


def _section_title(text: str) -> _Block:
    """A filled heading bar."""
    height = SECTION_STYLE.leading + 6

    def paint(page: _Page, top: float) -> None:
        page.fill(HEADER_FILL, [(MARGIN, top - height, CONTENT_WIDTH, height)])
        page.style(SECTION_STYLE)
        page.text(MARGIN + 4, top - 3 - SECTION_STYLE.size, text)

    return _Block(height, paint)


def _header_block(sheet: InvoiceSheet, max_lines: int) -> _Block:
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

    def paint(page: _Page, top: float) -> None:
        for x, label_width, rows in laid_out:
            _draw_fields(page, rows, x, top, label_width)

    height = max(sum(row[2] for row in rows) for _, _, rows in laid_out)
    return _Block(height, paint)


def _field(
    label: str, texts: Sequence[str], label_width: float, max_lines: int
) -> tuple[str, list[str], float]:
    """A header row: its label, value lines (at most `max_lines`) and height."""
    room = HALF_WIDTH - label_width - FIELD_PADDING_RIGHT
    value = [line for text in texts for line in _wrap(text, VALUE_STYLE, room) or [""]]
    value = _cap(value, max_lines, VALUE_STYLE, room) if any(value) else [NO_VALUE]
    label_height = FIELD_LABEL_PADDING_TOP + LABEL_STYLE.leading + FIELD_PADDING_Y
    return label, value, max(label_height, 2 * FIELD_PADDING_Y + len(value) * VALUE_STYLE.leading)


def _draw_fields(
    page: _Page,
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
    styles: tuple[_Style, _Style]  # of the label, of the number and figures
    height: float


def _figure_row(
    number: str,
    label: str,
    figures: Sequence[str],
    styles: tuple[_Style, _Style],
    room: float,
    padding: float,
) -> _FigureRow:
    """A row with its label broken into lines `room` wide, `padding` above and below."""
    lines = _fixed_lines(label, styles[0], room)
    height = max(len(lines) * styles[0].leading, styles[1].leading) + 2 * padding
    return _FigureRow(number, lines, figures, styles, height)


def _draw_figure_rows(
    page: _Page,
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
        figure_baseline = _middle_baseline(bottom, row.height, figure.leading, figure.size)
        label_height = len(row.label) * label.leading
        page.style(figure)
        page.text(lefts[0], figure_baseline, row.number)
        page.style(label)
        page.paragraph(
            lefts[1], _middle_baseline(bottom, row.height, label_height, label.size), row.label
        )
        page.style(figure)
        for right, text in zip(rights, row.figures, strict=True):
            page.text_right(right, figure_baseline, text)
        edges.append(bottom)
    return edges


def _summary_block(summary: G702Summary) -> _Block:
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

    def paint(page: _Page, top: float) -> None:
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

    return _Block(sum(row.height for row in rows), paint)


def _change_order_box(summary: G702Summary) -> _Block:
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

    def paint(page: _Page, top: float) -> None:
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

    return _Block(sum(row.height for row in rows), paint)


def _subcontractor_signature(header: G702Header, max_lines: int) -> _Block:
    """The subcontractor's certification with its name and signature and date lines."""
    left = MARGIN + HALF_WIDTH + COLUMN_GAP
    room = HALF_WIDTH - 2 * BOX_PADDING
    label_width = _width(SUBCONTRACTOR_LABEL, SMALL_BOLD_STYLE)
    name = _wrap(header.subcontractor_name, SMALL_STYLE, room - label_width) or [NO_VALUE]
    name = _cap(name, max_lines, SMALL_STYLE, room - label_width)
    name_height = len(name) * SMALL_STYLE.leading + 2 * BOX_PADDING_Y
    title_height = SMALL_STYLE.leading + 2 * BOX_PADDING_Y
    box = _certification_box(
        left, HALF_WIDTH, "SUBCONTRACTOR'S CERTIFICATION", title_height, SUBCONTRACTOR_STATEMENT
    )
    height = box.height + name_height + SIGNATURE_ROW_HEIGHT

    def paint(page: _Page, top: float) -> None:
        x = left + BOX_PADDING
        box.paint(page, top)
        name_baseline = top - box.height - BOX_PADDING_Y - SMALL_STYLE.size
        page.style(SMALL_BOLD_STYLE)
        page.text(x, name_baseline, SUBCONTRACTOR_LABEL)
        page.style(SMALL_STYLE)
        page.paragraph(x + label_width, name_baseline, name)  # wrapped lines under the first
        _draw_signature_line(page, x, top - height, "Signature", "Date", room)
        page.box(BLACK, 0.8, left, top - height, left + HALF_WIDTH, top)

    return _Block(height, paint)


def _certificate_block() -> _Block:
    """Architect's / general contractor's certificate for payment with signature lines."""
    title = "ARCHITECT'S / GENERAL CONTRACTOR'S CERTIFICATE FOR PAYMENT"
    box = _certification_box(
        MARGIN, CONTENT_WIDTH, title, CERTIFICATE_TITLE_HEIGHT, CERTIFICATE_STATEMENT
    )
    height = box.height + 2 * SIGNATURE_ROW_HEIGHT

    def paint(page: _Page, top: float) -> None:
        x, half = MARGIN + BOX_PADDING, CONTENT_WIDTH / 2
        line_width = half - 2 * BOX_PADDING
        box.paint(page, top)
        row_bottom = top - box.height - SIGNATURE_ROW_HEIGHT
        _draw_signature_line(page, x, row_bottom, "Amount certified", "", line_width)
        row_bottom -= SIGNATURE_ROW_HEIGHT
        _draw_signature_line(page, x, row_bottom, "Architect", "Date", line_width)
        _draw_signature_line(page, x + half, row_bottom, "General contractor", "Date", line_width)
        page.box(BLACK, 0.8, MARGIN, top - height, MARGIN + CONTENT_WIDTH, top)

    return _Block(height, paint)


def _certification_box(
    left: float, width: float, title: str, title_height: float, statement: str
) -> _Block:
    """The top of a certification box: its shaded title row (the title at the row's bottom
    padding) and its statement. The caller draws the rest and the outline."""
    lines = _fixed_lines(statement, SMALL_STYLE, width - 2 * BOX_PADDING)
    statement_height = len(lines) * SMALL_STYLE.leading + 2 * BOX_PADDING_Y

    def paint(page: _Page, top: float) -> None:
        x, size = left + BOX_PADDING, SMALL_STYLE.size
        page.fill(HEADER_FILL, [(left, top - title_height, width, title_height)])
        page.style(SMALL_BOLD_STYLE)
        title_bottom = top - title_height + BOX_PADDING_Y
        page.text(x, title_bottom + SMALL_STYLE.leading - size, title)
        page.style(SMALL_STYLE)
        page.paragraph(x, top - title_height - BOX_PADDING_Y - size, lines)

    return _Block(title_height + statement_height, paint)


def _draw_signature_line(
    page: _Page, x: float, row_bottom: float, label: str, date_label: str, width: float
) -> None:
    """ "Label: ______  Date: ______" with ruled blanks at the bottom of a signature row; no
    date part when `date_label` is empty."""
    date_width = 70.0 if date_label else 0.0
    label_width = _width(f"{label}:", SIGNATURE_STYLE) + 6
    date_label_width = _width(f"{date_label}:", SIGNATURE_STYLE) + 8 if date_label else 0.0
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


# ---------------------------------------------------------------------------------------------
# Continuation sheet (G703)


@dataclass(frozen=True)
class _G703Row:
    """A row of the G703 table (or a page's piece of a row), broken into lines."""

    item: Sequence[str]  # lines of column A
    description: Sequence[str]  # lines of column B
    figures: Sequence[str]  # columns C to J, one line each ("" on a continued piece)
    height: float
    is_total: bool = False


@dataclass(frozen=True)
class _G703Layout:
    """Text styles, columns, header and the rows of each continuation page."""

    cell_style: _Style
    total_style: _Style
    title_style: _Style
    column_edges: tuple[float, ...]  # left edge of each column, then the table's right edge
    titles: tuple[tuple[str, ...], ...]  # column titles broken into lines
    letter_height: float
    title_height: float
    pages: list[list[_G703Row]]


def _continuation_layout(lines: Sequence[G703Line]) -> _G703Layout:
    """The G703 table laid out: column widths, line breaks, then the rows onto pages."""
    body = [_g703_cells(line) for line in lines]
    totals = _g703_totals(lines)
    font_size, col_widths = _g703_columns(body + [totals], LANDSCAPE[0] - 2 * MARGIN)
    cell_style = _Style(FONT, font_size, font_size + 2)
    title_style = _Style(FONT_BOLD, font_size - 1, font_size + 0.5)
    column_edges = [MARGIN]
    for width in col_widths:
        column_edges.append(column_edges[-1] + width)
    titles = tuple(
        _fixed_lines(title, title_style, width - 2 * CELL_PADDING)
        for (_, title), width in zip(G703_HEADERS, col_widths, strict=True)
    )
    letter_height = font_size + 2 * CELL_PADDING_Y
    title_lines = max(len(lines) for lines in titles)
    title_height = title_lines * title_style.leading + 2 * CELL_PADDING_Y
    item_room = col_widths[0] - 2 * CELL_PADDING
    description_room = col_widths[1] - 2 * CELL_PADDING
    rows = []
    for cells in body:
        item = _wrap(cells[0], cell_style, item_room)
        description = _wrap(cells[1], cell_style, description_room)
        line_count = max(len(item), len(description), 1)
        height = line_count * cell_style.leading + 2 * CELL_PADDING_Y
        rows.append(_G703Row(item, description, cells[2:], height))
    total_height = cell_style.leading + 2 * CELL_PADDING_Y
    rows.append(_G703Row((), ("GRAND TOTAL",), totals[2:], total_height, is_total=True))
    pages = _paginate_rows(rows, letter_height + title_height, cell_style.leading)
    return _G703Layout(
        cell_style,
        _Style(FONT_BOLD, font_size, font_size + 2),
        title_style,
        tuple(column_edges),
        titles,
        letter_height,
        title_height,
        pages,
    )


def _paginate_rows(
    rows: Sequence[_G703Row], head_height: float, leading: float
) -> list[list[_G703Row]]:
    """The rows page by page, below the repeated header. A row that does not fit goes to the
    next page whole; only a row taller than a page is split, between lines, over pages."""
    pages: list[list[_G703Row]] = [[]]
    used = head_height
    for row in rows:
        if (
            pages[-1]
            and used + row.height > G703_ROOM
            and (
                head_height + row.height <= G703_ROOM  # fits the next page whole
                or G703_ROOM - used < G703_MIN_ROW_PIECE  # too little room left to start it here
            )
        ):
            pages.append([])
            used = head_height
        if used + row.height <= G703_ROOM:
            pages[-1].append(row)
            used += row.height
            continue
        for piece in _split_row(row, G703_ROOM - used, G703_ROOM - head_height, leading):
            if pages[-1] and used + piece.height > G703_ROOM:
                pages.append([])
                used = head_height
            pages[-1].append(piece)
            used += piece.height
    return pages


def _split_row(
    row: _G703Row, first_room: float, page_room: float, leading: float
) -> Iterator[_G703Row]:
    """`row` in pieces between lines: the first fits `first_room`, the others `page_room`;
    the figures show on the first piece only."""
    line_count = max(len(row.item), len(row.description))
    start, room, figures = 0, first_room, row.figures
    while start < line_count:
        fitting = max(1, math.floor((room - 2 * CELL_PADDING_Y) / leading + 1e-9))
        end = min(line_count, start + fitting)
        height = (end - start) * leading + 2 * CELL_PADDING_Y
        yield _G703Row(row.item[start:end], row.description[start:end], figures, height)
        start, room, figures = end, page_room, ("",) * len(row.figures)


def _draw_g703_page(page: _Page, layout: _G703Layout, rows: Sequence[_G703Row]) -> None:
    """One page of the table: shading, grid and rules, header, rows."""
    edges = layout.column_edges
    left, right = edges[0], edges[-1]
    width = right - left
    top = G703_TOP
    head_bottom = top - layout.letter_height - layout.title_height
    row_bottoms = []
    bottom = head_bottom
    for row in rows:
        bottom -= row.height
        row_bottoms.append(bottom)
    ends_table = rows[-1].is_total

    page.fill(HEADER_FILL, [(left, head_bottom, width, top - head_bottom)])
    stripes = [  # every other row, starting afresh on each page
        (left, row_bottom, width, row.height)
        for index, (row, row_bottom) in enumerate(zip(rows, row_bottoms, strict=True))
        if index % 2 and not row.is_total
    ]
    page.fill(STRIPE_FILL, stripes)
    if ends_table:
        page.fill(HEADER_FILL, [(left, bottom, width, rows[-1].height)])

    row_edges = [top, top - layout.letter_height, head_bottom, *row_bottoms]
    grid = [(left, y, right, y) for y in row_edges] + [(x, bottom, x, top) for x in edges]
    page.rules(GRID_GREY, 0.25, grid)
    # The outline (open at the bottom while the table goes on) and the rules under the header
    # and above the grand total.
    thick = [
        (left, top, right, top),
        (left, bottom, left, top),
        (right, bottom, right, top),
        (left, head_bottom, right, head_bottom),
    ]
    if ends_table:
        total_top = bottom + rows[-1].height
        thick += [(left, bottom, right, bottom), (left, total_top, right, total_top)]
    page.rules(BLACK, 0.8, thick)

    page.canvas.doForm(CONTINUATION_HEAD)
    _draw_g703_rows(page, layout, rows, row_bottoms)


def _define_continuation_head(canvas: Canvas, sheet: InvoiceSheet, layout: _G703Layout) -> None:
    """The band and the column titles, the same on every continuation page, as a form (a PDF
    XObject) that each page shows: drawn once per document instead of once per page."""
    canvas.beginForm(CONTINUATION_HEAD, 0, 0, *LANDSCAPE)
    head = _Page(canvas)
    _draw_continuation_band(head, sheet)
    _draw_g703_header(head, layout)
    head.finish()
    canvas.endForm()


def _draw_g703_header(page: _Page, layout: _G703Layout) -> None:
    """The letter row and the title row, centred."""
    edges = layout.column_edges
    style = layout.title_style
    page.style(style)
    letter_bottom = G703_TOP - layout.letter_height
    cell_size = layout.cell_style.size
    baseline = _middle_baseline(letter_bottom, layout.letter_height, cell_size, style.size)
    for index, (letter_key, _) in enumerate(G703_HEADERS):
        page.text_centred((edges[index] + edges[index + 1]) / 2, baseline, letter_key)
    title_bottom = letter_bottom - layout.title_height
    for index, lines in enumerate(layout.titles):
        centre = (edges[index] + edges[index + 1]) / 2
        lines_height = len(lines) * style.leading
        baseline = _middle_baseline(title_bottom, layout.title_height, lines_height, style.size)
        for line in lines:
            page.text_centred(centre, baseline, line)
            baseline -= style.leading


def _draw_g703_rows(
    page: _Page, layout: _G703Layout, rows: Sequence[_G703Row], row_bottoms: Sequence[float]
) -> None:
    """Cell text, top-aligned: A and B left, C to J right."""
    edges = layout.column_edges
    item_x, description_x = edges[0] + CELL_PADDING, edges[1] + CELL_PADDING
    figure_rights = [edge - CELL_PADDING for edge in edges[3:]]
    for row, row_bottom in zip(rows, row_bottoms, strict=True):
        style = layout.total_style if row.is_total else layout.cell_style
        page.style(style)
        baseline = row_bottom + row.height - CELL_PADDING_Y - style.size
        page.paragraph(item_x, baseline, row.item)
        page.paragraph(description_x, baseline, row.description)
        for right, text in zip(figure_rights, row.figures, strict=True):
            page.text_right(right, baseline, text)


def _g703_cells(line: G703Line) -> list[str]:
    """Display strings of one line, columns A to J (description still raw text)."""
    percent = NO_VALUE if line.scheduled_value == ZERO else format_percent(line.percent_complete)
    return [line.item_number, line.description_of_work, *_g703_figures(G703_AMOUNTS(line), percent)]


def _g703_totals(lines: Sequence[G703Line]) -> list[str]:
    """Display strings of the grand-total row; H is total G ÷ total C ("—" when C sums to 0)."""
    columns = zip(*map(G703_AMOUNTS, lines), strict=True)
    totals = [sum(column, ZERO) for column in columns] or [ZERO] * len(G703_MONEY_COLUMNS)
    scheduled, completed = totals[0], totals[4]
    percent = NO_VALUE if scheduled == ZERO else format_percent(completed / scheduled * 100)
    return ["", "GRAND TOTAL", *_g703_figures(totals, percent)]


def _g703_figures(amounts: Sequence[Decimal], percent: str) -> list[str]:
    """Columns C to J: the amounts of `G703_AMOUNTS` as money, with `percent` in column H."""
    figures = [format_money(amount) for amount in amounts]
    figures.insert(G703_PERCENT_COLUMN - 2, percent)
    return figures


def _g703_columns(rows: Sequence[Sequence[str]], width: float) -> tuple[float, list[float]]:
    """Font size and column widths so every amount fits on one line and B keeps enough room.

    Money columns share one width, sized to the widest amount (bold, as in the total row); the
    item column is sized to the longest item number within limits. Column B takes the rest.
    """
    widest_money = max(len(row[index]) for row in rows for index in G703_MONEY_COLUMNS)
    money_samples = {
        row[index]
        for row in rows
        for index in G703_MONEY_COLUMNS
        if len(row[index]) >= widest_money - 1
    }
    item_numbers = [row[0] for row in rows]
    for font_size in G703_FONT_SIZES:
        money_text = max(stringWidth(text, FONT_BOLD, font_size) for text in money_samples)
        money_width = max(money_text + 2 * CELL_PADDING + 2, 62.0)
        percent_text = stringWidth("100.00%", FONT, font_size)
        percent_width = max(percent_text + 2 * CELL_PADDING + 2, 36.0)
        item_text = max((stringWidth(item, FONT, font_size) for item in item_numbers), default=0)
        item_width = min(max(item_text + 2 * CELL_PADDING + 1, 30.0), 64.0)
        fixed = item_width + percent_width + money_width * len(G703_MONEY_COLUMNS)
        description_width = width - fixed
        if description_width >= G703_MIN_DESCRIPTION_WIDTH or font_size == G703_FONT_SIZES[-1]:
            break
    widths = [money_width] * len(G703_HEADERS)
    widths[0], widths[1], widths[G703_PERCENT_COLUMN] = item_width, description_width, percent_width
    return font_size, widths


__all__ = ["render_invoice"]
