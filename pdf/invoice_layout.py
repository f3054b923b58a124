"""Shared parts of the default invoice PDF: fonts, colours, page geometry, text measuring and
wrapping, the `Page` drawing helper, the document's canvas and the page footer.

Imported by `pdf.g702` (page 1), `pdf.g703` (continuation sheet) and `pdf.render_invoice`,
which composes them. No I/O: the helpers measure text or draw on the canvas they are given. The
only global state is `rl_config.useA85`, set once when this module is imported (it is the first
one the others import), and the memos of pure results: the wrap cache of `fixed_lines`, text
widths (`text_width`) and the PDF operators of plain texts (`_TextObject`).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.colors import Color
from reportlab.lib.pagesizes import landscape, letter
from reportlab.lib.textsplit import wordSplit
from reportlab.lib.units import inch
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import standardFonts, stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.pdfgen.textobject import PDFTextObject

from pdf.documents import InvoiceSheet

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
BODY_BOTTOM = MARGIN + FOOTER_BAND  # lowest point of the page body
NO_VALUE = "—"
ELLIPSIS = "…"
TEXT_MEMO_SIZE = 8192  # texts whose width and text operators are remembered, per process


@dataclass(frozen=True)
class Style:
    """Font, size, line spacing and colour of text."""

    font: str
    size: float
    leading: float
    color: Color = BLACK

    @property
    def font_key(self) -> tuple[str, float, float]:
        """What a text object's font setting holds: font, size, leading."""
        return self.font, self.size, self.leading


FOOTER_STYLE = Style(FONT, 7.5, 9, FOOTER_GREY)


# ---------------------------------------------------------------------------------------------
# Text: widths, wrapping, cutting


def text_width(text: str, style: Style) -> float:
    """Width of `text` in `style`, in points."""
    return _string_width(text, style.font, style.size)


@functools.lru_cache(maxsize=TEXT_MEMO_SIZE)
def _string_width(text: str, font: str, size: float) -> float:
    """`stringWidth`, remembered: labels, amounts and dates recur on every page and invoice."""
    return stringWidth(text, font, size)


def wrap(text: str, style: Style, width: float) -> list[str]:
    """Lines of `text` at most `width` wide; "\\n" starts a new line, an empty text has none.

    Breaks at spaces (`simpleSplit`); a word wider than `width` is cut between characters
    (`wordSplit`). A one-line text that fits is returned as it is.
    """
    text = text.strip()
    if "\n" not in text and text_width(text, style) <= width:
        return [text] if text else []
    lines: list[str] = []
    for line in simpleSplit(text, style.font, style.size, width):
        # simpleSplit only lets a line overrun `width` when it is a single word.
        if " " in line or text_width(line, style) <= width:
            lines.append(line)
        else:
            lines += [piece for _, piece in wordSplit(line, width, style.font, style.size)]
    return lines


@functools.lru_cache(maxsize=512)
def fixed_lines(text: str, style: Style, width: float) -> tuple[str, ...]:
    """`wrap` for the form's own texts (statements, labels, column titles), remembered: they
    are the same for almost every invoice."""
    return tuple(wrap(text, style, width))


def cap(lines: list[str], max_lines: int, style: Style, width: float) -> list[str]:
    """`lines`, at most `max_lines` of them; a cut ends with "…"."""
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = fit(kept[-1] + ELLIPSIS, style, width)
    return kept


def fit(text: str, style: Style, width: float) -> str:
    """`text` cut with "…" so that it fits `width` on one line."""
    if text_width(text, style) <= width:
        return text
    # The longest prefix that fits with "…", by bisection; no WinAnsi Helvetica glyph is
    # narrower than 0.19 em, so no more characters than that can fit.
    fits, too_long = 0, min(len(text), int(width / (0.19 * style.size)) + 1)
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if text_width(text[:middle] + ELLIPSIS, style) <= width:
            fits = middle
        else:
            too_long = middle
    return text[:fits].rstrip() + ELLIPSIS


def middle_baseline(bottom: float, height: float, content_height: float, size: float) -> float:
    """First baseline of text centred vertically in a cell with equal top and bottom padding."""
    return bottom + (height + content_height) / 2 - size


# ---------------------------------------------------------------------------------------------
# Drawing

Rect = tuple[float, float, float, float]  # x, y, width, height
Rule = tuple[float, float, float, float]  # x0, y0, x1, y1


class _TextObject(PDFTextObject):
    """reportlab's text object, remembering the operators of each text drawn in a single font.

    Encoding a string for a standard font and escaping it (`_formatText`) is most of what a
    text line costs, and the form's labels, amounts and dates recur on every page and invoice.
    Only results in one of the 14 standard fonts without a font change are remembered
    (``(…) Tj``, the same bytes in any document); a text that needs reportlab's substitute
    fonts (which registers them with the document) is formatted afresh each time.
    """

    def _formatText(self, text: str) -> str:  # noqa: N802 - reportlab's name
        key = (self._fontname, text)
        operators = _PLAIN_TEXT_OPERATORS.get(key)
        if operators is None:
            operators = super()._formatText(text)
            if self._fontname in standardFonts and " Tf " not in operators:
                if len(_PLAIN_TEXT_OPERATORS) >= TEXT_MEMO_SIZE:
                    _PLAIN_TEXT_OPERATORS.clear()
                _PLAIN_TEXT_OPERATORS[key] = operators
        return operators


_PLAIN_TEXT_OPERATORS: dict[tuple[str, str], str] = {}


class Page:
    """One page being drawn. Fills and rules go straight to the canvas; text is collected in
    one text object (far cheaper than a canvas call per string) that `finish` draws on top."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self._text = _TextObject(canvas)
        self._style: Style | None = None

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

    def style(self, style: Style) -> None:
        """Font, size, leading and colour of the text that follows."""
        current = self._style
        if current is None or current.font_key != style.font_key:
            self._text.setFont(style.font, style.size, style.leading)
        if current is None or (current.color is not style.color and current.color != style.color):
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
            self.text(right - text_width(text, self._style), baseline, text)

    def text_centred(self, centre: float, baseline: float, text: str) -> None:
        """`text` centred on `centre`."""
        if text and self._style:
            self.text(centre - text_width(text, self._style) / 2, baseline, text)

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
# Document and footer


def new_canvas(buffer: io.BytesIO, sheet: InvoiceSheet) -> Canvas:
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


def footer_text(sheet: InvoiceSheet) -> str:
    """Left part of the footer: which invoice and application the page belongs to."""
    return (
        f"Invoice {sheet.invoice_number or NO_VALUE} · "
        f"Application #{sheet.header.application_number or NO_VALUE} · "
        f"{sheet.header.project_name}"
    )


def draw_footer(
    page: Page, page_width: float, page_number: int, page_count: int, text: str
) -> None:
    """A rule, the invoice/application text and "Page X of Y" at the bottom of a page."""
    baseline = MARGIN * 0.6
    rule = (MARGIN, baseline + 9, page_width - MARGIN, baseline + 9)
    page.rules(GRID_GREY, 0.5, [rule], round_caps=False)
    page.style(FOOTER_STYLE)
    page_label = f"Page {page_number} of {page_count}"
    room = page_width - 2 * MARGIN - text_width(page_label, FOOTER_STYLE) - 24
    page.text(MARGIN, baseline, fit(text, FOOTER_STYLE, room))
    page.text_right(page_width - MARGIN, baseline, page_label)


__all__ = [
    "BLACK",
    "BODY_BOTTOM",
    "FONT",
    "FONT_BOLD",
    "FOOTER_GREY",
    "FOOTER_STYLE",
    "GRID_GREY",
    "HEADER_FILL",
    "LANDSCAPE",
    "MARGIN",
    "NO_VALUE",
    "PORTRAIT",
    "STRIPE_FILL",
    "Page",
    "Rect",
    "Rule",
    "Style",
    "cap",
    "draw_footer",
    "fit",
    "fixed_lines",
    "footer_text",
    "middle_baseline",
    "new_canvas",
    "text_width",
    "wrap",
]
