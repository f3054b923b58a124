"""Render the default invoice PDF: an AIA G702-style application and a G703 continuation sheet.

`render_invoice(sheet)` is pure: it reads only the `InvoiceSheet`, touches no database, Slack or
file, mutates no global state, and returns the PDF bytes. Page 1 (portrait letter) is the
application for payment: header, the nine numbered lines, the change-order summary and the
signature block. The continuation sheet starts on a new landscape-letter page; its column header
repeats on every page. Every page has a footer with the invoice and application numbers and
"Page X of Y". Only the core Helvetica fonts are used (WinAnsi: "·", "–", "—", "’", "é" work).

Both parts are fixed forms, so they are laid out here (line breaks, row heights, page breaks)
and drawn straight onto a reportlab canvas, with the geometry the platypus tables they replace
had. The page count is known before the first page is drawn, so "Page X of Y" takes one pass.
Text, rules and fills are written as PDF operators in batches (`_Ink`): a canvas call per string
would cost more than everything else. Lines break as reportlab's Paragraph breaks them.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import getFont, stringWidth
from reportlab.pdfgen.canvas import Canvas

from pdf.documents import ZERO, G702Header, G702Summary, G703Line, InvoiceSheet
from pdf.formatting import format_date, format_money, format_percent

# reportlab reads this switch from its global settings whenever it writes a page stream and has no
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
TOTAL_FILL = colors.HexColor("#E6E9EE")
FOOTER_GREY = colors.HexColor("#555555")

PORTRAIT = letter
LANDSCAPE = landscape(letter)
MARGIN = 0.5 * inch
FOOTER_BAND = 0.25 * inch  # space kept free at the bottom of each page for the footer
BAND_HEIGHT = 0.75 * inch  # continuation sheet: identification band above the table
BODY_BOTTOM = MARGIN + FOOTER_BAND  # lowest point of the page body
NO_VALUE = "—"
SPACE_SHRINKAGE = 0.05  # a paragraph line may overrun its width by 5 % of a space per word

# Page 1 geometry (points).
CONTENT_WIDTH = PORTRAIT[0] - 2 * MARGIN
COLUMN_GAP = 14.0
HALF_WIDTH = (CONTENT_WIDTH - COLUMN_GAP) / 2  # header columns and the two boxes side by side
BOX_PADDING = 6.0  # left/right padding inside the boxes
BOX_PADDING_Y = 2.5  # top/bottom padding inside the boxes
FIELD_PADDING_RIGHT = 4.0  # header fields
FIELD_PADDING_Y = 1.5
FIELD_LABEL_PADDING_TOP = 3.0
HEADER_VALUE_MAX_LINES = 8  # a longer header value is cut, so page 1 always fits a page
SUMMARY_COLUMNS = (18.0, CONTENT_WIDTH - 18.0 - 95.0 - 105.0, 95.0, 105.0)
SUMMARY_PADDING_Y = 3.0
SUMMARY_PADDING_LEFT = 2.0  # number and label columns
SUMMARY_UNDERLINED_ROWS = (5, 6)  # the 5a and 5b amounts are ruled off
CHANGE_ORDER_AMOUNT_WIDTH = 72.0
SIGNATURE_ROW_HEIGHT = 24.0 + 2 * BOX_PADDING_Y
EMPTY_CELL_HEIGHT = 12.0 + 2 * BOX_PADDING_Y  # an empty table cell in reportlab's default font

# G703 columns: letter and title (no-break spaces keep the formulas on one line).
G703_HEADERS: tuple[tuple[str, str], ...] = (
    ("A", "ITEM NO."),
    ("B", "DESCRIPTION OF WORK"),
    ("C", "SCHEDULED VALUE"),
    ("D", "WORK COMPLETED FROM PREVIOUS APPLICATION"),
    ("E", "WORK COMPLETED THIS PERIOD"),
    ("F", "MATERIALS PRESENTLY STORED (NOT IN D OR E)"),
    ("G", "TOTAL COMPLETED AND STORED TO DATE (D\xa0+\xa0E\xa0+\xa0F)"),
    ("H", "%\xa0(G\xa0÷\xa0C)"),
    ("I", "BALANCE TO FINISH (C\xa0–\xa0G)"),
    ("J", "RETAINAGE"),
)
G703_MONEY_COLUMNS = (2, 3, 4, 5, 6, 8, 9)
G703_PERCENT_COLUMN = 7
G703_MIN_DESCRIPTION_WIDTH = 170.0
G703_FONT_SIZES = (7.5, 7.0, 6.5, 6.0, 5.5)  # tried in order until column B is wide enough
CELL_PADDING = 3.0  # left/right
CELL_PADDING_Y = 2.0  # top/bottom
G703_MIN_ROW_PIECE = 24.0  # a row taller than a page is split, in pieces at least this tall
G703_TOP = LANDSCAPE[1] - MARGIN - BAND_HEIGHT  # top edge of the table on every page
G703_ROOM = G703_TOP - BODY_BOTTOM  # height of the table's space on a page


# ---------------------------------------------------------------------------------------------
# Fonts and text styles


def _pdf_escape(code: int) -> str:
    """How reportlab writes byte `code` in a PDF string literal."""
    if code < 32 or code >= 127:
        return f"\\{code:03o}"
    return "\\" + chr(code) if chr(code) in "\\()" else chr(code)


@dataclass(frozen=True)
class _Font:
    """A core font's glyph widths and PDF string escapes for the characters it encodes (WinAnsi).

    Text with other characters is left to reportlab (`stringWidth`, `Canvas.drawString`), which
    draws them from Symbol or ZapfDingbats. Read-only after `load`.
    """

    name: str
    widths: dict[str, int]  # in 1/1000 em
    escapes: dict[int, str]  # a `str.translate` table: character -> escaped byte

    @classmethod
    def load(cls, name: str) -> _Font:
        font = getFont(name)
        candidates = {chr(code) for code in range(256)}
        for code in range(256):
            for encoding in ("cp1252", font.encName):
                with contextlib.suppress(UnicodeDecodeError):
                    candidates.add(bytes([code]).decode(encoding))
        widths: dict[str, int] = {}
        escapes: dict[int, str] = {}
        for char in candidates:
            try:
                encoded = char.encode(font.encName)
            except UnicodeEncodeError:
                continue
            if len(encoded) == 1:
                widths[char] = font.widths[encoded[0]]
                escapes[ord(char)] = _pdf_escape(encoded[0])
        return cls(name, widths, escapes)

    def width(self, text: str, size: float) -> float:
        """Width of `text` at `size` points, computed exactly as reportlab computes it."""
        try:
            return sum(map(self.widths.__getitem__, text)) * 0.001 * size
        except KeyError:
            return stringWidth(text, self.name, size)

    def pdf_string(self, text: str) -> str | None:
        """`text` escaped for a PDF string literal; None if it needs glyphs of other fonts."""
        escaped = text.translate(self.escapes)
        return escaped if escaped.isascii() and escaped.isprintable() else None


REGULAR = _Font.load(FONT)
BOLD = _Font.load(FONT_BOLD)


@dataclass(frozen=True)
class _Style:
    """Font, size, line spacing and colour of text."""

    font: _Font
    size: float
    leading: float
    color: Color = BLACK


TITLE_STYLE = _Style(BOLD, 14, 17)
SUBTITLE_STYLE = _Style(REGULAR, 8, 10, FOOTER_GREY)
LABEL_STYLE = _Style(BOLD, 6.5, 8, FOOTER_GREY)
VALUE_STYLE = _Style(REGULAR, 8.5, 10.5)
SECTION_STYLE = _Style(BOLD, 8, 10)
LINE_STYLE = _Style(REGULAR, 8.5, 10.5)
LINE_BOLD_STYLE = _Style(BOLD, 8.5, 10.5)
PAYMENT_STYLE = _Style(BOLD, 9.5, 11.5)
SMALL_STYLE = _Style(REGULAR, 7.5, 9.5)
SMALL_BOLD_STYLE = _Style(BOLD, 7.5, 9.5)
COLUMN_HEADING_STYLE = _Style(BOLD, 6.5, 8)
SIGNATURE_STYLE = _Style(REGULAR, 7.5, 9)
FOOTER_STYLE = _Style(REGULAR, 7.5, 9, FOOTER_GREY)
BAND_TITLE_STYLE = _Style(BOLD, 12, 14)
BAND_NOTE_STYLE = _Style(REGULAR, 7.5, 9, FOOTER_GREY)
BAND_STYLE = _Style(REGULAR, 8, 10)


# ---------------------------------------------------------------------------------------------
# Line breaking, as reportlab's Paragraph does it

# The characters Paragraph breaks lines at when a text holds a no-break space (which it keeps).
_BREAKING_SPACES = re.compile(
    "[\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\u1680\u2000-\u200b\u2028\u2029\u202f\u205f\u3000]+"
)


def _wrap(text: str, font: _Font, size: float, width: float) -> list[str]:
    """Lines of user text `text` in a column `width` wide; "\\n" starts a new line.

    Greedy, like Paragraph: words break at whitespace, a word wider than the column is split
    between characters, blank lines are kept, an empty text has no lines.
    """
    stripped = text.strip()
    if not stripped:
        return []
    lines: list[str] = []
    for segment in stripped.replace("\r\n", "\n").split("\n"):
        lines += _wrap_words(_words(segment), font, size, width) or [""]
    return lines


def _words(text: str) -> list[str]:
    """The words of one paragraph line, split where Paragraph splits them."""
    if "\xa0" in text:
        return [word for word in _BREAKING_SPACES.split(text) if word]
    return text.split()


def _wrap_words(
    words: Sequence[str], font: _Font, size: float, width: float, lead: float = 0.0
) -> list[str]:
    """`words` broken into lines; with `lead`, line 1 already holds a word that wide (a label,
    drawn separately: the first returned line is what follows it)."""
    space = font.width(" ", size)
    lines: list[str] = []
    line: list[str] = []
    line_width = lead if lead else -space
    has_lead = bool(lead)
    for word in words:
        word_width = font.width(word, size)
        new_width = line_width + space + word_width
        words_on_line = len(line) + has_lead
        limit = width + SPACE_SHRINKAGE * space * words_on_line
        if new_width > limit and word_width > width:
            *heads, word = _split_long_word(word, font, size, line_width + space, width)
            for head in heads:
                if head:
                    line.append(head)
                lines.append(" ".join(line))
                line, line_width, has_lead, words_on_line = [], -space, False, 0
            word_width = font.width(word, size)
            new_width = line_width + space + word_width
        if new_width <= limit or not words_on_line:
            line.append(word)
            line_width = new_width
        else:
            lines.append(" ".join(line))
            line, line_width, has_lead = [word], word_width, False
    if line or has_lead:
        lines.append(" ".join(line))
    return lines


def _split_long_word(word: str, font: _Font, size: float, start: float, width: float) -> list[str]:
    """`word` in pieces: the first fills the line from `start`, each other one a whole line."""
    pieces: list[str] = []
    piece = ""
    position = start
    for char in word:
        char_width = font.width(char, size)
        if position + char_width > width and (piece or char_width <= width):
            pieces.append(piece)
            piece, position = char, char_width
        else:
            piece += char
            position += char_width
    pieces.append(piece)
    return pieces


def _cut(lines: list[str], font: _Font, size: float, width: float) -> list[str]:
    """`lines`, at most `HEADER_VALUE_MAX_LINES` of them; a cut ends with "…"."""
    if len(lines) <= HEADER_VALUE_MAX_LINES:
        return lines
    kept = lines[:HEADER_VALUE_MAX_LINES]
    kept[-1] = _fit(kept[-1] + "…", font, size, width)
    return kept


def _fit(text: str, font: _Font, size: float, max_width: float) -> str:
    """`text` cut with "…" so that it fits `max_width` on one line."""
    if font.width(text, size) <= max_width:
        return text
    text = text[: int(max_width / (0.2 * size))]  # no Helvetica glyph is narrower than 0.2 em
    while text and font.width(text + "…", size) > max_width:
        text = text[:-1]
    return text.rstrip() + "…"


# ---------------------------------------------------------------------------------------------
# Drawing

Segment = tuple[float, float, float, float]  # a rule (x0, y0, x1, y1) or a rect (x, y, w, h)


class _Ink:
    """The content of one page, collected as PDF operators and given to the canvas in batches.

    A canvas call per string or rule costs more than all of the layout; formatting operators
    here is several times cheaper. Fonts, colours, widths and positions are all operators, so
    this object, not the canvas, knows the graphics state. Only text that needs substitute
    glyphs is drawn by the canvas.
    """

    def __init__(self, canvas: Canvas, font_names: dict[str, str]) -> None:
        """`font_names`: the fonts' resource names, from `_font_resource_names`."""
        self._canvas = canvas
        self._font_names = font_names
        self._ops: list[str] = []
        self._font = REGULAR
        self._size = 0.0
        self._fill: Color | None = None
        self._stroke: tuple[Color, float, bool] | None = None

    def style(self, style: _Style) -> None:
        """Font, size and colour of the text that follows."""
        self.font(style.font, style.size)
        self.fill(style.color)

    def font(self, font: _Font, size: float) -> None:
        if font is not self._font or size != self._size:
            name = self._font_names.get(font.name)
            if name:
                self._ops.append(f"BT {name} {size} Tf ET")
            else:
                self.flush()
                self._canvas.setFont(font.name, size)
            self._font, self._size = font, size

    def fill(self, color: Color) -> None:
        if color is not self._fill:
            red, green, blue = color.rgb()
            self._ops.append(f"{red:.4f} {green:.4f} {blue:.4f} rg")
            self._fill = color

    def stroke(self, color: Color, width: float, round_caps: bool = True) -> None:
        """Colour and width of the rules that follow; table rules have round caps and joins."""
        if self._stroke != (color, width, round_caps):
            red, green, blue = color.rgb()
            cap = 1 if round_caps else 0
            self._ops.append(f"{red:.4f} {green:.4f} {blue:.4f} RG {width} w {cap} J {cap} j")
            self._stroke = (color, width, round_caps)

    def text(self, x: float, y: float, text: str, word_space: float = 0.0) -> None:
        """`text` with its baseline starting at (x, y); `word_space` widens every space."""
        if not text:
            return
        escaped = self._font.pdf_string(text)
        if escaped is None:  # needs substitute glyphs: reportlab writes it
            self.flush()
            self._canvas.setFont(self._font.name, self._size)
            self._canvas.drawString(x, y, text, wordSpace=word_space or None)
        elif word_space:
            self._ops.append(
                f"BT 1 0 0 1 {x:.2f} {y:.2f} Tm {word_space:.4f} Tw ({escaped}) Tj 0 Tw ET"
            )
        else:
            self._ops.append(f"BT 1 0 0 1 {x:.2f} {y:.2f} Tm ({escaped}) Tj ET")

    def text_right(self, right: float, y: float, text: str) -> None:
        """`text` ending at `right`."""
        self.text(right - self._font.width(text, self._size), y, text)

    def text_centred(self, centre: float, y: float, text: str) -> None:
        """`text` centred on `centre`."""
        self.text(centre - 0.5 * self._font.width(text, self._size), y, text)

    def paragraph_line(
        self, x: float, y: float, text: str, width: float, centred: bool = False
    ) -> None:
        """A line of a paragraph `width` wide, as Paragraph draws it: a line that overruns the
        width (see `SPACE_SHRINKAGE`) has its spaces narrowed until it fits."""
        extra = width - self._font.width(text, self._size)
        spaces = text.count(" ") + text.count("\xa0") if extra <= -1e-8 else 0
        if spaces:
            self.text(x, y, text, word_space=extra / spaces)
        else:
            self.text(x + 0.5 * extra if centred else x, y, text)

    def paragraph(
        self, lines: Sequence[str], x: float, baseline: float, leading: float, width: float
    ) -> None:
        """Left-aligned paragraph lines, the first on `baseline`."""
        for index, line in enumerate(lines):
            self.paragraph_line(x, baseline - index * leading, line, width)

    def rects(self, rects: Sequence[Segment]) -> None:
        """Filled rectangles (x, y, width, height) in the fill colour."""
        if rects:
            self._ops += [f"{x:.2f} {y:.2f} {w:.2f} {h:.2f} re" for x, y, w, h in rects]
            self._ops.append("f")

    def rules(self, rules: Sequence[Segment]) -> None:
        """Straight lines (x0, y0, x1, y1) in the stroke colour and width."""
        if rules:
            self._ops += [f"{x0:.2f} {y0:.2f} m {x1:.2f} {y1:.2f} l" for x0, y0, x1, y1 in rules]
            self._ops.append("S")

    def box(self, left: float, bottom: float, right: float, top: float) -> None:
        """A rectangle's outline, as four rules (like a table's BOX)."""
        self.rules(
            [
                (left, top, right, top),
                (left, bottom, right, bottom),
                (left, bottom, left, top),
                (right, bottom, right, top),
            ]
        )

    def flush(self) -> None:
        """Give the collected operators to the canvas."""
        if self._ops:
            self._canvas.addLiteral("\n".join(self._ops))
            self._ops.clear()


def _font_resource_names(canvas: Canvas) -> dict[str, str]:
    """The names ("/F1", ...) the canvas' document gives our fonts; registers the fonts.

    reportlab shows them only in a text object's code, read here (the object is not drawn).
    Should that ever fail, the result is empty and `_Ink` selects fonts through the canvas.
    """
    names = {}
    for font in (REGULAR, BOLD):
        text_object = canvas.beginText()
        text_object.setFont(font.name, 10)
        match = re.search(r"(/\w+) 10 Tf", text_object.getCode())
        if match is None:
            return {}
        names[font.name] = match.group(1)
    return names


def _middle_baseline(bottom: float, height: float, content_height: float, size: float) -> float:
    """First baseline of text centred vertically in a cell with equal top and bottom padding."""
    return bottom + (height + content_height) / 2 - size


# ---------------------------------------------------------------------------------------------
# Public API


def render_invoice(sheet: InvoiceSheet) -> bytes:
    """Render `sheet` as the default invoice PDF (G702 page + G703 continuation) and return it.

    Pure and thread-safe: no I/O beyond an in-memory buffer, no global state changed per call.
    Money is shown with `format_money`, percentages with `format_percent`.
    """
    application_pages = _place_blocks(_application_blocks(sheet))
    continuation = _continuation_layout(sheet.lines)
    page_count = len(application_pages) + len(continuation.pages)
    footer_text = _footer_text(sheet)

    buffer = io.BytesIO()
    canvas = _new_canvas(buffer, sheet)
    font_names = _font_resource_names(canvas)
    page_number = 0
    for placed_blocks in application_pages:
        page_number += 1
        ink = _Ink(canvas, font_names)
        for block, top in placed_blocks:
            block.paint(ink, top)
        _draw_footer(ink, PORTRAIT[0], page_number, page_count, footer_text)
        ink.flush()
        canvas.showPage()
    for rows in continuation.pages:
        page_number += 1
        canvas.setPageSize(LANDSCAPE)
        ink = _Ink(canvas, font_names)
        _draw_continuation_band(ink, sheet)
        _draw_g703_page(ink, continuation, rows)
        _draw_footer(ink, LANDSCAPE[0], page_number, page_count, footer_text)
        ink.flush()
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
    ink: _Ink, page_width: float, page_number: int, page_count: int, footer_text: str
) -> None:
    """A rule, the invoice/application text and "Page X of Y" at the bottom of a page."""
    baseline = MARGIN * 0.6
    ink.stroke(GRID_GREY, 0.5, round_caps=False)
    ink.rules([(MARGIN, baseline + 9, page_width - MARGIN, baseline + 9)])
    ink.style(FOOTER_STYLE)
    page_label = f"Page {page_number} of {page_count}"
    label_width = REGULAR.width(page_label, FOOTER_STYLE.size)
    room = page_width - 2 * MARGIN - label_width - 24
    ink.text(MARGIN, baseline, _fit(footer_text, REGULAR, FOOTER_STYLE.size, room))
    ink.text_right(page_width - MARGIN, baseline, page_label)


def _draw_continuation_band(ink: _Ink, sheet: InvoiceSheet) -> None:
    """Identification band at the top of every continuation page (G703 "title block")."""
    header = sheet.header
    page_width, page_height = LANDSCAPE
    top = page_height - MARGIN
    right_edge = page_width - MARGIN
    ink.style(BAND_TITLE_STYLE)
    ink.text(MARGIN, top - 12, "CONTINUATION SHEET")
    ink.style(BAND_NOTE_STYLE)
    ink.text(MARGIN, top - 23, "Attached to the application and certificate for payment")
    ink.style(BAND_STYLE)
    project = f"Project: {header.project_name} ({header.project_number})"
    left_room = (page_width - 2 * MARGIN) * 0.55
    ink.text(MARGIN, top - 35, _fit(project, REGULAR, BAND_STYLE.size, left_room))
    right_lines = (
        f"Application no.: {header.application_number or NO_VALUE}",
        f"Invoice no.: {sheet.invoice_number or NO_VALUE}",
        f"Period: {format_date(header.period_start)} to {format_date(header.period_end)}",
    )
    for index, text in enumerate(right_lines):
        ink.text_right(right_edge, top - 10 - 11 * index, text)
    ink.stroke(BLACK, 0.8, round_caps=False)
    ink.rules([(MARGIN, top - 43, right_edge, top - 43)])


# ---------------------------------------------------------------------------------------------
# Page 1: application for payment (G702)


@dataclass(frozen=True)
class _Block:
    """A part of page 1 with a known height; `paint(ink, top)` draws it below `top`."""

    height: float
    paint: Callable[[_Ink, float], None]
    is_space: bool = False


def _space(height: float) -> _Block:
    """Vertical space between blocks (dropped at the top of a page)."""
    return _Block(height, lambda _ink, _top: None, is_space=True)


def _place_blocks(blocks: Sequence[_Block]) -> list[list[tuple[_Block, float]]]:
    """The blocks with their top edges, page by page (portrait); a block that does not fit
    starts a new page. Only absurdly long header values need a second page."""
    page_top = PORTRAIT[1] - MARGIN
    pages: list[list[tuple[_Block, float]]] = [[]]
    top = page_top
    for block in blocks:
        if top - block.height < BODY_BOTTOM - 1e-6 and pages[-1]:
            pages.append([])
            top = page_top
        if block.is_space and not pages[-1]:
            continue
        pages[-1].append((block, top))
        top -= block.height
    return pages


def _application_blocks(sheet: InvoiceSheet) -> list[_Block]:
    """The blocks of page 1: title, header block, the nine lines, change orders, signatures."""
    return [
        _paragraph_block("APPLICATION AND CERTIFICATE FOR PAYMENT", TITLE_STYLE),
        _paragraph_block(
            "Subcontractor's application for payment · G702 / G703 format", SUBTITLE_STYLE
        ),
        _space(8),
        _header_block(sheet),
        _space(10),
        _section_title("SUBCONTRACTOR'S APPLICATION FOR PAYMENT"),
        _summary_block(sheet.summary),
        _space(12),
        _change_orders_and_signature(sheet),
        _space(12),
        _certificate_block(),
    ]


def _paragraph_block(text: str, style: _Style) -> _Block:
    """A full-width paragraph."""
    lines = _wrap(text, style.font, style.size, CONTENT_WIDTH)

    def paint(ink: _Ink, top: float) -> None:
        ink.style(style)
        ink.paragraph(lines, MARGIN, top - style.size, style.leading, CONTENT_WIDTH)

    return _Block(len(lines) * style.leading, paint)


@dataclass(frozen=True)
class _FieldRow:
    """A label/value row of the header block, broken into lines."""

    label: list[str]
    value: list[str]
    height: float


def _header_block(sheet: InvoiceSheet) -> _Block:
    """Two columns of labelled fields: parties and contract (left), project and invoice (right)."""
    header = sheet.header
    sub_from = [header.subcontractor_name]
    if header.subcontractor_address.strip():
        sub_from.append(header.subcontractor_address)  # on its own lines, even without a name
    left = _field_rows(
        [
            ("TO (GENERAL CONTRACTOR)", [header.to_general_contractor]),
            ("FROM (SUBCONTRACTOR)", sub_from),
            ("CONTRACT FOR", [header.contract_for]),
            ("CONTRACT DATE", [format_date(header.contract_date)]),
        ],
        label_width=105,
    )
    right = _field_rows(
        [
            ("PROJECT", [header.project_name]),
            ("PROJECT NO.", [header.project_number]),
            ("APPLICATION NO.", [header.application_number]),
            ("PERIOD FROM", [format_date(header.period_start)]),
            ("PERIOD TO", [format_date(header.period_end)]),
            ("INVOICE NO.", [sheet.invoice_number]),
            ("STATUS", [sheet.status]),
            ("BILLING DATE", [format_date(sheet.billing_date)]),
        ],
        label_width=85,
    )

    def paint(ink: _Ink, top: float) -> None:
        _draw_field_rows(ink, left, MARGIN, top, label_width=105)
        _draw_field_rows(ink, right, MARGIN + HALF_WIDTH + COLUMN_GAP, top, label_width=85)

    height = max(sum(row.height for row in left), sum(row.height for row in right))
    return _Block(height, paint)


def _field_rows(fields: Sequence[tuple[str, Sequence[str]]], label_width: float) -> list[_FieldRow]:
    """Label/value rows. A value is texts that each start a new line; empty, it shows "—";
    longer than `HEADER_VALUE_MAX_LINES` lines, it is cut."""
    label_room = label_width - FIELD_PADDING_RIGHT
    value_room = HALF_WIDTH - label_width - FIELD_PADDING_RIGHT
    rows = []
    for label, texts in fields:
        label_lines = _wrap(label, LABEL_STYLE.font, LABEL_STYLE.size, label_room)
        value_lines = [
            line
            for text in texts
            for line in _wrap(text, VALUE_STYLE.font, VALUE_STYLE.size, value_room) or [""]
        ]
        if not any(value_lines):
            value_lines = [NO_VALUE]
        value_lines = _cut(value_lines, VALUE_STYLE.font, VALUE_STYLE.size, value_room)
        height = max(
            FIELD_LABEL_PADDING_TOP + len(label_lines) * LABEL_STYLE.leading + FIELD_PADDING_Y,
            2 * FIELD_PADDING_Y + len(value_lines) * VALUE_STYLE.leading,
        )
        rows.append(_FieldRow(label_lines, value_lines, height))
    return rows


def _draw_field_rows(
    ink: _Ink, rows: Sequence[_FieldRow], left: float, top: float, label_width: float
) -> None:
    """Labels and values top-aligned in their rows, with a hairline below each row."""
    label_room = label_width - FIELD_PADDING_RIGHT
    value_room = HALF_WIDTH - label_width - FIELD_PADDING_RIGHT
    hairlines = []
    for row in rows:
        ink.style(LABEL_STYLE)
        label_baseline = top - FIELD_LABEL_PADDING_TOP - LABEL_STYLE.size
        ink.paragraph(row.label, left, label_baseline, LABEL_STYLE.leading, label_room)
        ink.style(VALUE_STYLE)
        value_baseline = top - FIELD_PADDING_Y - VALUE_STYLE.size
        value_left = left + label_width
        ink.paragraph(row.value, value_left, value_baseline, VALUE_STYLE.leading, value_room)
        top -= row.height
        hairlines.append((left, top, left + HALF_WIDTH, top))
    ink.stroke(GRID_GREY, 0.25)
    ink.rules(hairlines)


def _section_title(text: str) -> _Block:
    """A filled heading bar."""
    height = SECTION_STYLE.leading + 6

    def paint(ink: _Ink, top: float) -> None:
        ink.fill(HEADER_FILL)
        ink.rects([(MARGIN, top - height, CONTENT_WIDTH, height)])
        ink.style(SECTION_STYLE)
        ink.text(MARGIN + 4, top - 3 - SECTION_STYLE.size, text)

    return _Block(height, paint)


@dataclass(frozen=True)
class _FigureRow:
    """A row of a table of amounts on page 1, laid out: label lines, right-aligned figures."""

    label: list[str]
    figures: Sequence[str]  # one per figure column, "" for none
    label_style: _Style
    figure_style: _Style
    height: float
    number: str = ""  # the G702 line number, left of the label
    emphasised: bool = False  # the payment due: shaded, amount boxed


def _figure_row(
    label: str,
    figures: Sequence[str],
    styles: tuple[_Style, _Style],
    label_room: float,
    padding_y: float,
    number: str = "",
    emphasised: bool = False,
) -> _FigureRow:
    """A row with its label (style `styles[0]`) broken into lines, and its height."""
    label_style, figure_style = styles
    lines = _wrap(label, label_style.font, label_style.size, label_room)
    height = max(len(lines) * label_style.leading, figure_style.leading) + 2 * padding_y
    return _FigureRow(lines, figures, label_style, figure_style, height, number, emphasised)


def _draw_figure_rows(
    ink: _Ink,
    rows: Sequence[_FigureRow],
    top: float,
    label_left: float,
    label_room: float,
    figure_rights: Sequence[float],
    number_left: float = 0.0,
) -> list[float]:
    """Number, label and right-aligned figures of each row, centred vertically in the row.
    Returns the rows' top edges followed by the table's bottom edge."""
    edges = [top]
    for row in rows:
        bottom = top - row.height
        figure = row.figure_style
        figure_baseline = _middle_baseline(bottom, row.height, figure.leading, figure.size)
        if row.number:
            ink.style(figure)
            ink.text(number_left, figure_baseline, row.number)
        label = row.label_style
        ink.style(label)
        label_height = len(row.label) * label.leading
        label_baseline = _middle_baseline(bottom, row.height, label_height, label.size)
        ink.paragraph(row.label, label_left, label_baseline, label.leading, label_room)
        ink.style(figure)
        for right, text in zip(figure_rights, row.figures, strict=True):
            ink.text_right(right, figure_baseline, text)
        edges.append(bottom)
        top = bottom
    return edges


def _summary_block(summary: G702Summary) -> _Block:
    """The nine numbered lines as a ruled table; line 8 (payment due) shaded, its amount boxed."""
    number_width, label_width, inner_width, amount_width = SUMMARY_COLUMNS
    label_room = label_width - SUMMARY_PADDING_LEFT - BOX_PADDING
    money = format_money
    completed_pct = format_percent(summary.completed_work_retainage_percent)
    stored_pct = format_percent(summary.stored_materials_retainage_percent)
    plain, payment = (LINE_STYLE, LINE_STYLE), (LINE_BOLD_STYLE, PAYMENT_STYLE)

    def line(
        number: str, label: str, inner: str = "", amount: str = "", emphasised: bool = False
    ) -> _FigureRow:
        styles = payment if emphasised else plain
        return _figure_row(
            label, (inner, amount), styles, label_room, SUMMARY_PADDING_Y, number, emphasised
        )

    rows = [
        line("1.", "ORIGINAL CONTRACT SUM", amount=money(summary.original_contract_sum)),
        line(
            "2.", "Net change by change orders", amount=money(summary.net_change_by_change_orders)
        ),
        line("3.", "CONTRACT SUM TO DATE (Line 1 ± 2)", amount=money(summary.contract_sum_to_date)),
        line(
            "4.",
            "TOTAL COMPLETED & STORED TO DATE (Column G on G703)",
            amount=money(summary.total_completed_and_stored_to_date),
        ),
        line("5.", "RETAINAGE:"),
        line(
            "",
            f"a. {completed_pct} of completed work (Columns D + E on G703)",
            inner=money(summary.completed_work_retainage_amount),
        ),
        line(
            "",
            f"b. {stored_pct} of stored material (Column F on G703)",
            inner=money(summary.stored_materials_retainage_amount),
        ),
        line(
            "",
            "Total retainage (Lines 5a + 5b, or total in Column J of G703)",
            amount=money(summary.total_retainage),
        ),
        line(
            "6.",
            "TOTAL EARNED LESS RETAINAGE (Line 4 minus Line 5 total)",
            amount=money(summary.total_earned_less_retainage),
        ),
        line(
            "7.",
            "LESS PREVIOUS CERTIFICATES FOR PAYMENT (Line 6 from prior certificate)",
            amount=money(summary.less_previous_certificates_for_payment),
        ),
        line(
            "8.", "CURRENT PAYMENT DUE", amount=money(summary.current_payment_due), emphasised=True
        ),
        line(
            "9.",
            "BALANCE TO FINISH, INCLUDING RETAINAGE (Line 3 minus Line 6)",
            amount=money(summary.balance_to_finish_including_retainage),
        ),
    ]

    def paint(ink: _Ink, top: float) -> None:
        label_left = MARGIN + number_width
        inner_left = label_left + label_width
        amount_left = inner_left + inner_width
        right = amount_left + amount_width
        ink.fill(HEADER_FILL)
        row_top = top
        for row in rows:
            if row.emphasised:
                ink.rects([(MARGIN, row_top - row.height, CONTENT_WIDTH, row.height)])
            row_top -= row.height
        figure_rights = (amount_left - BOX_PADDING, right - BOX_PADDING)
        edges = _draw_figure_rows(
            ink,
            rows,
            top,
            label_left + SUMMARY_PADDING_LEFT,
            label_room,
            figure_rights,
            number_left=MARGIN + SUMMARY_PADDING_LEFT,
        )
        bottoms = edges[1:]
        ink.stroke(GRID_GREY, 0.25)
        ink.rules([(MARGIN, bottom, right, bottom) for bottom in bottoms])
        ink.stroke(BLACK, 0.6)
        ink.rules(
            [
                (inner_left, bottoms[row], amount_left, bottoms[row])
                for row in SUMMARY_UNDERLINED_ROWS
            ]
        )
        ink.stroke(BLACK, 1.0)
        for row, row_top, bottom in zip(rows, edges[:-1], bottoms, strict=True):
            if row.emphasised:
                ink.box(amount_left, bottom, right, row_top)

    return _Block(sum(row.height for row in rows), paint)


def _change_orders_and_signature(sheet: InvoiceSheet) -> _Block:
    """Change-order summary box (left) beside the subcontractor's signature (right), top-aligned."""
    change_orders = _change_order_box(sheet.summary)
    signature = _subcontractor_signature(sheet.header)

    def paint(ink: _Ink, top: float) -> None:
        change_orders.paint(ink, top)
        signature.paint(ink, top)

    return _Block(max(change_orders.height, signature.height), paint)


def _change_order_box(summary: G702Summary) -> _Block:
    """Approved in previous months / this month, additions and deductions, totals, net change."""
    total_additions = summary.previous_change_order_additions + summary.new_change_order_additions
    total_deductions = (
        summary.previous_change_order_deductions + summary.new_change_order_deductions
    )
    net_change = total_additions - total_deductions
    label_width = HALF_WIDTH - 2 * CHANGE_ORDER_AMOUNT_WIDTH
    label_room = label_width - 2 * BOX_PADDING
    heading = (SMALL_BOLD_STYLE, COLUMN_HEADING_STYLE)
    plain = (SMALL_STYLE, SMALL_STYLE)
    totals = (SMALL_BOLD_STYLE, SMALL_BOLD_STYLE)
    money = format_money

    def row(label: str, figures: tuple[str, str], styles: tuple[_Style, _Style]) -> _FigureRow:
        return _figure_row(label, figures, styles, label_room, BOX_PADDING_Y)

    rows = [
        row("CHANGE ORDER SUMMARY", ("ADDITIONS", "DEDUCTIONS"), heading),
        row(
            "Total changes approved in previous months",
            (
                money(summary.previous_change_order_additions),
                money(summary.previous_change_order_deductions),
            ),
            plain,
        ),
        row(
            "Total approved this month",
            (money(summary.new_change_order_additions), money(summary.new_change_order_deductions)),
            plain,
        ),
        row("TOTALS", (money(total_additions), money(total_deductions)), totals),
        # The net change spans both amount columns.
        row("NET CHANGES BY CHANGE ORDER", ("", money(net_change)), totals),
    ]
    totals_row, net_row = 3, 4

    def paint(ink: _Ink, top: float) -> None:
        left, right = MARGIN, MARGIN + HALF_WIDTH
        amount_left = left + label_width
        middle = amount_left + CHANGE_ORDER_AMOUNT_WIDTH
        ink.fill(HEADER_FILL)
        ink.rects([(left, top - rows[0].height, HALF_WIDTH, rows[0].height)])
        figure_rights = (middle - BOX_PADDING, right - BOX_PADDING)
        edges = _draw_figure_rows(ink, rows, top, left + BOX_PADDING, label_room, figure_rights)
        bottom = edges[-1]
        ink.stroke(BLACK, 0.8)
        ink.box(left, bottom, right, top)
        ink.stroke(GRID_GREY, 0.25)
        ink.rules(
            [(left, edge, right, edge) for edge in edges[1:-1]]
            + [(amount_left, bottom, amount_left, top), (middle, edges[net_row], middle, top)]
        )
        ink.stroke(BLACK, 0.8)
        ink.rules([(left, edges[totals_row], right, edges[totals_row])])

    return _Block(sum(row.height for row in rows), paint)


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
SUBCONTRACTOR_LABEL = "Subcontractor:"


def _subcontractor_signature(header: G702Header) -> _Block:
    """The subcontractor's certification with signature and date lines."""
    left = MARGIN + HALF_WIDTH + COLUMN_GAP
    text_room = HALF_WIDTH - 2 * BOX_PADDING
    size, leading = SMALL_STYLE.size, SMALL_STYLE.leading
    statement = _wrap(SUBCONTRACTOR_STATEMENT, REGULAR, size, text_room)
    label_width = BOLD.width(SUBCONTRACTOR_LABEL, size)
    name = header.subcontractor_name.strip() or NO_VALUE
    name_lines: list[str] = []
    for index, segment in enumerate(name.replace("\r\n", "\n").split("\n")):
        lead = label_width if index == 0 else 0.0
        name_lines += _wrap_words(_words(segment), REGULAR, size, text_room, lead) or [""]
    name_lines = _cut(name_lines, REGULAR, size, text_room)
    title_height = leading + 2 * BOX_PADDING_Y
    statement_height = len(statement) * leading + 2 * BOX_PADDING_Y
    name_height = len(name_lines) * leading + 2 * BOX_PADDING_Y
    height = title_height + statement_height + name_height + SIGNATURE_ROW_HEIGHT

    def paint(ink: _Ink, top: float) -> None:
        x = left + BOX_PADDING
        ink.fill(HEADER_FILL)
        ink.rects([(left, top - title_height, HALF_WIDTH, title_height)])
        ink.style(SMALL_BOLD_STYLE)
        ink.text(x, top - BOX_PADDING_Y - size, "SUBCONTRACTOR'S CERTIFICATION")
        ink.style(SMALL_STYLE)
        row_top = top - title_height
        ink.paragraph(statement, x, row_top - BOX_PADDING_Y - size, leading, text_room)
        row_top -= statement_height
        baseline = row_top - BOX_PADDING_Y - size
        ink.style(SMALL_BOLD_STYLE)
        ink.text(x, baseline, SUBCONTRACTOR_LABEL)
        ink.style(SMALL_STYLE)
        _draw_after_label(ink, x + label_width, baseline, name_lines[0], text_room - label_width)
        ink.paragraph(name_lines[1:], x, baseline - leading, leading, text_room)
        row_bottom = row_top - name_height - SIGNATURE_ROW_HEIGHT
        _draw_signature_line(ink, x, row_bottom, "Signature", "Date", text_room)
        ink.stroke(BLACK, 0.8)
        ink.box(left, top - height, left + HALF_WIDTH, top)

    return _Block(height, paint)


def _draw_after_label(ink: _Ink, x: float, baseline: float, text: str, room: float) -> None:
    """The rest of a paragraph line after a label that ends at `x`: a space, then `text`,
    narrowed like `_Ink.paragraph_line` when it overruns `room`."""
    space = REGULAR.width(" ", SMALL_STYLE.size)
    extra = room - space - REGULAR.width(text, SMALL_STYLE.size)
    spaces = 1 + text.count(" ") + text.count("\xa0") if extra <= -1e-8 else 0
    word_space = extra / spaces if spaces else 0.0
    ink.text(x + space + word_space, baseline, text, word_space=word_space)


def _certificate_block() -> _Block:
    """Architect's / general contractor's certificate for payment with signature lines."""
    half = CONTENT_WIDTH / 2
    size, leading = SMALL_STYLE.size, SMALL_STYLE.leading
    statement_room = CONTENT_WIDTH - 2 * BOX_PADDING
    statement = _wrap(CERTIFICATE_STATEMENT, REGULAR, size, statement_room)
    # The title row also held an empty cell in reportlab's default font, which is taller.
    title_height = max(leading + 2 * BOX_PADDING_Y, EMPTY_CELL_HEIGHT)
    statement_height = len(statement) * leading + 2 * BOX_PADDING_Y
    height = title_height + statement_height + 2 * SIGNATURE_ROW_HEIGHT

    def paint(ink: _Ink, top: float) -> None:
        x = MARGIN + BOX_PADDING
        line_width = half - 2 * BOX_PADDING
        ink.fill(HEADER_FILL)
        ink.rects([(MARGIN, top - title_height, CONTENT_WIDTH, title_height)])
        ink.style(SMALL_BOLD_STYLE)
        title_baseline = top - title_height + BOX_PADDING_Y + leading - size  # bottom-aligned
        ink.text(x, title_baseline, "ARCHITECT'S / GENERAL CONTRACTOR'S CERTIFICATE FOR PAYMENT")
        ink.style(SMALL_STYLE)
        row_top = top - title_height
        ink.paragraph(statement, x, row_top - BOX_PADDING_Y - size, leading, statement_room)
        row_bottom = row_top - statement_height - SIGNATURE_ROW_HEIGHT
        _draw_signature_line(ink, x, row_bottom, "Amount certified", "", line_width, date_width=0)
        row_bottom -= SIGNATURE_ROW_HEIGHT
        _draw_signature_line(ink, x, row_bottom, "Architect", "Date", line_width)
        _draw_signature_line(ink, x + half, row_bottom, "General contractor", "Date", line_width)
        ink.stroke(BLACK, 0.8)
        ink.box(MARGIN, top - height, MARGIN + CONTENT_WIDTH, top)

    return _Block(height, paint)


def _draw_signature_line(
    ink: _Ink,
    x: float,
    row_bottom: float,
    label: str,
    date_label: str,
    width: float,
    date_width: float = 70,
) -> None:
    """ "Label: ______  Date: ______" with ruled blanks, at the bottom of a signature row."""
    size = SIGNATURE_STYLE.size
    label_width = REGULAR.width(f"{label}:", size) + 6
    date_label_width = REGULAR.width(f"{date_label}:", size) + 8 if date_width else 0
    blank_width = width - label_width - date_label_width - date_width - 8
    rule_y = row_bottom + BOX_PADDING_Y
    baseline = rule_y + 1 + SIGNATURE_STYLE.leading - size
    ink.style(SIGNATURE_STYLE)
    ink.text(x, baseline, f"{label}:")
    blank_left = x + label_width
    rules = [(blank_left, rule_y, blank_left + blank_width, rule_y)]
    if date_width:
        date_left = blank_left + blank_width + date_label_width
        ink.text_right(date_left - 3, baseline, f"{date_label}:")
        rules.append((date_left, rule_y, date_left + date_width, rule_y))
    ink.stroke(BLACK, 0.6)
    ink.rules(rules)


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
    """Font size, columns, header and the rows of each continuation page."""

    font_size: float
    leading: float
    column_edges: tuple[float, ...]  # left edge of each column, then the table's right edge
    titles: tuple[tuple[str, ...], ...]  # column titles broken into lines
    letter_height: float
    title_height: float
    pages: list[list[_G703Row]]


def _continuation_layout(lines: Sequence[G703Line]) -> _G703Layout:
    """The G703 table laid out: column widths, line breaks, then the rows onto pages."""
    body = [_g703_cells(line) for line in lines]
    totals = _g703_totals(lines)
    font_size, col_widths = _g703_layout(body + [totals], LANDSCAPE[0] - 2 * MARGIN)
    leading = font_size + 2
    column_edges = [MARGIN]
    for width in col_widths:
        column_edges.append(column_edges[-1] + width)
    title_size, title_leading = font_size - 1, font_size + 0.5
    titles = tuple(
        tuple(_wrap(title, BOLD, title_size, width - 2 * CELL_PADDING))
        for (_, title), width in zip(G703_HEADERS, col_widths, strict=True)
    )
    letter_height = font_size + 2 * CELL_PADDING_Y
    title_height = max(len(lines) for lines in titles) * title_leading + 2 * CELL_PADDING_Y
    item_room = col_widths[0] - 2 * CELL_PADDING
    description_room = col_widths[1] - 2 * CELL_PADDING
    rows = []
    for cells in body:
        item = _cell_lines(cells[0], font_size, item_room)
        description = _cell_lines(cells[1], font_size, description_room)
        height = max(len(item), len(description), 1) * leading + 2 * CELL_PADDING_Y
        rows.append(_G703Row(item, description, cells[2:], height))
    total_height = leading + 2 * CELL_PADDING_Y
    rows.append(_G703Row((), ("GRAND TOTAL",), totals[2:], total_height, is_total=True))
    pages = _paginate_rows(rows, letter_height + title_height, leading)
    return _G703Layout(
        font_size, leading, tuple(column_edges), titles, letter_height, title_height, pages
    )


def _cell_lines(text: str, font_size: float, room: float) -> Sequence[str]:
    """`text` as it is when it fits on one line, else broken into lines like a paragraph."""
    if "\n" not in text and REGULAR.width(text, font_size) <= room:
        return (text,)
    return _wrap(text, REGULAR, font_size, room)


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
    """`row` in pieces between lines: the first fits `first_room`, the others `page_room`."""
    line_count = max(len(row.item), len(row.description))
    start, room, figures = 0, first_room, row.figures
    while start < line_count:
        fitting = max(1, math.floor((room - 2 * CELL_PADDING_Y) / leading + 1e-9))
        end = min(line_count, start + fitting)
        height = (end - start) * leading + 2 * CELL_PADDING_Y
        yield _G703Row(row.item[start:end], row.description[start:end], figures, height)
        start, room, figures = end, page_room, ("",) * len(row.figures)


def _draw_g703_page(ink: _Ink, layout: _G703Layout, rows: Sequence[_G703Row]) -> None:
    """One page of the table: shading, header, rows, then grid and rules."""
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

    ink.fill(HEADER_FILL)
    ink.rects([(left, head_bottom, width, top - head_bottom)])
    ink.fill(STRIPE_FILL)  # every other row, starting afresh on each page
    ink.rects(
        [
            (left, row_bottom, width, row.height)
            for index, (row, row_bottom) in enumerate(zip(rows, row_bottoms, strict=True))
            if index % 2 and not row.is_total
        ]
    )
    if ends_table:
        ink.fill(TOTAL_FILL)
        ink.rects([(left, bottom, width, rows[-1].height)])

    _draw_g703_header(ink, layout)
    _draw_g703_rows(ink, layout, rows, row_bottoms)

    ink.stroke(GRID_GREY, 0.25)
    row_edges = [top, top - layout.letter_height, head_bottom, *row_bottoms]
    ink.rules([(left, y, right, y) for y in row_edges] + [(x, bottom, x, top) for x in edges])
    # The outline (open at the bottom while the table goes on) and the rules under the header
    # and above the grand total.
    thick_rules = [
        (left, top, right, top),
        (left, bottom, left, top),
        (right, bottom, right, top),
        (left, head_bottom, right, head_bottom),
    ]
    if ends_table:
        total_top = bottom + rows[-1].height
        thick_rules += [(left, bottom, right, bottom), (left, total_top, right, total_top)]
    ink.stroke(BLACK, 0.8)
    ink.rules(thick_rules)


def _draw_g703_header(ink: _Ink, layout: _G703Layout) -> None:
    """The letter row and the title row, centred."""
    edges = layout.column_edges
    size = layout.font_size - 1
    ink.font(BOLD, size)
    ink.fill(BLACK)
    letter_bottom = G703_TOP - layout.letter_height
    baseline = _middle_baseline(letter_bottom, layout.letter_height, layout.font_size, size)
    for index, (letter_key, _) in enumerate(G703_HEADERS):
        ink.text_centred((edges[index] + edges[index + 1]) / 2, baseline, letter_key)
    title_leading = layout.font_size + 0.5
    title_bottom = letter_bottom - layout.title_height
    for index, lines in enumerate(layout.titles):
        x = edges[index] + CELL_PADDING
        room = edges[index + 1] - edges[index] - 2 * CELL_PADDING
        title_height = len(lines) * title_leading
        baseline = _middle_baseline(title_bottom, layout.title_height, title_height, size)
        for line in lines:
            ink.paragraph_line(x, baseline, line, room, centred=True)
            baseline -= title_leading


def _draw_g703_rows(
    ink: _Ink, layout: _G703Layout, rows: Sequence[_G703Row], row_bottoms: Sequence[float]
) -> None:
    """Cell text, top-aligned: A and B left, C to J right."""
    size, leading, edges = layout.font_size, layout.leading, layout.column_edges
    item_x, item_room = edges[0] + CELL_PADDING, edges[1] - edges[0] - 2 * CELL_PADDING
    description_x = edges[1] + CELL_PADDING
    description_room = edges[2] - edges[1] - 2 * CELL_PADDING
    figure_rights = [edge - CELL_PADDING for edge in edges[3:]]
    ink.fill(BLACK)
    for row, row_bottom in zip(rows, row_bottoms, strict=True):
        ink.font(BOLD if row.is_total else REGULAR, size)
        baseline = row_bottom + row.height - CELL_PADDING_Y - size
        ink.paragraph(row.item, item_x, baseline, leading, item_room)
        ink.paragraph(row.description, description_x, baseline, leading, description_room)
        for right, text in zip(figure_rights, row.figures, strict=True):
            ink.text_right(right, baseline, text)


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
        money_text = max(BOLD.width(text, font_size) for text in money_samples)
        money_width = max(money_text + 2 * CELL_PADDING + 2, 62.0)
        percent_width = max(REGULAR.width("100.00%", font_size) + 2 * CELL_PADDING + 2, 36.0)
        item_text = max((REGULAR.width(item, font_size) for item in item_numbers), default=0)
        item_width = min(max(item_text + 2 * CELL_PADDING + 1, 30.0), 64.0)
        fixed = item_width + percent_width + money_width * len(G703_MONEY_COLUMNS)
        description_width = width - fixed
        if description_width >= G703_MIN_DESCRIPTION_WIDTH or font_size == G703_FONT_SIZES[-1]:
            break
    widths = [money_width] * len(G703_HEADERS)
    widths[0], widths[1], widths[G703_PERCENT_COLUMN] = item_width, description_width, percent_width
    return font_size, widths


__all__ = ["render_invoice"]
