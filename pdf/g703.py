"""The continuation sheet (AIA G703 style) of the default invoice PDF.

`continuation_layout(lines)` measures everything before anything is drawn: font size and column
widths, the rows broken into lines, then the rows put on landscape-letter pages (a row taller
than a page is split between lines), so the page count is known up front.
`define_continuation_head` draws the identification band and the column titles once, as a form
(PDF XObject); `draw_g703_page` draws one page of the table and shows that form. The footer is
not drawn here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter

from reportlab.lib.units import inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from pdf.documents import ZERO, G703Line, InvoiceSheet
from pdf.formatting import format_date, format_money, format_percent
from pdf.invoice_layout import (
    BLACK,
    BODY_BOTTOM,
    FONT,
    FONT_BOLD,
    FOOTER_STYLE,
    GRID_GREY,
    HEADER_FILL,
    LANDSCAPE,
    MARGIN,
    NO_VALUE,
    STRIPE_FILL,
    Page,
    Style,
    fit,
    fixed_lines,
    middle_baseline,
    wrap,
)

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
BAND_HEIGHT = 0.75 * inch  # identification band above the table
G703_TOP = LANDSCAPE[1] - MARGIN - BAND_HEIGHT  # top edge of the table on every page
G703_ROOM = G703_TOP - BODY_BOTTOM  # height of the table's space on a page
CONTINUATION_HEAD = "ContinuationHead"  # name of the form with the band and column titles

BAND_TITLE_STYLE = Style(FONT_BOLD, 12, 14)
BAND_STYLE = Style(FONT, 8, 10)


@dataclass(frozen=True)
class G703Row:
    """A row of the G703 table (or a page's piece of a row), broken into lines."""

    item: Sequence[str]  # lines of column A
    description: Sequence[str]  # lines of column B
    figures: Sequence[str]  # columns C to J, one line each ("" on a continued piece)
    height: float
    is_total: bool = False


@dataclass(frozen=True)
class G703Layout:
    """Text styles, columns, header and the rows of each continuation page."""

    cell_style: Style
    total_style: Style
    title_style: Style
    column_edges: tuple[float, ...]  # left edge of each column, then the table's right edge
    titles: tuple[tuple[str, ...], ...]  # column titles broken into lines
    letter_height: float
    title_height: float
    pages: list[list[G703Row]]


def continuation_layout(lines: Sequence[G703Line]) -> G703Layout:
    """The G703 table laid out: column widths, line breaks, then the rows onto pages."""
    body = [_g703_cells(line) for line in lines]
    totals = _g703_totals(lines)
    font_size, col_widths = _g703_columns(body + [totals], LANDSCAPE[0] - 2 * MARGIN)
    cell_style = Style(FONT, font_size, font_size + 2)
    title_style = Style(FONT_BOLD, font_size - 1, font_size + 0.5)
    column_edges = [MARGIN]
    for width in col_widths:
        column_edges.append(column_edges[-1] + width)
    titles = tuple(
        fixed_lines(title, title_style, width - 2 * CELL_PADDING)
        for (_, title), width in zip(G703_HEADERS, col_widths, strict=True)
    )
    letter_height = font_size + 2 * CELL_PADDING_Y
    title_lines = max(len(lines) for lines in titles)
    title_height = title_lines * title_style.leading + 2 * CELL_PADDING_Y
    item_room = col_widths[0] - 2 * CELL_PADDING
    description_room = col_widths[1] - 2 * CELL_PADDING
    rows = []
    for cells in body:
        item = wrap(cells[0], cell_style, item_room)
        description = wrap(cells[1], cell_style, description_room)
        line_count = max(len(item), len(description), 1)
        height = line_count * cell_style.leading + 2 * CELL_PADDING_Y
        rows.append(G703Row(item, description, cells[2:], height))
    total_height = cell_style.leading + 2 * CELL_PADDING_Y
    rows.append(G703Row((), ("GRAND TOTAL",), totals[2:], total_height, is_total=True))
    pages = _paginate_rows(rows, letter_height + title_height, cell_style.leading)
    return G703Layout(
        cell_style,
        Style(FONT_BOLD, font_size, font_size + 2),
        title_style,
        tuple(column_edges),
        titles,
        letter_height,
        title_height,
        pages,
    )


def _paginate_rows(
    rows: Sequence[G703Row], head_height: float, leading: float
) -> list[list[G703Row]]:
    """The rows page by page, below the repeated header. A row that does not fit goes to the
    next page whole; only a row taller than a page is split, between lines, over pages."""
    pages: list[list[G703Row]] = [[]]
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
    row: G703Row, first_room: float, page_room: float, leading: float
) -> Iterator[G703Row]:
    """`row` in pieces between lines: the first fits `first_room`, the others `page_room`;
    the figures show on the first piece only."""
    line_count = max(len(row.item), len(row.description))
    start, room, figures = 0, first_room, row.figures
    while start < line_count:
        fitting = max(1, math.floor((room - 2 * CELL_PADDING_Y) / leading + 1e-9))
        end = min(line_count, start + fitting)
        height = (end - start) * leading + 2 * CELL_PADDING_Y
        yield G703Row(row.item[start:end], row.description[start:end], figures, height)
        start, room, figures = end, page_room, ("",) * len(row.figures)


def draw_g703_page(page: Page, layout: G703Layout, rows: Sequence[G703Row]) -> None:
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


def define_continuation_head(canvas: Canvas, sheet: InvoiceSheet, layout: G703Layout) -> None:
    """The band and the column titles, the same on every continuation page, as a form (a PDF
    XObject) that each page shows: drawn once per document instead of once per page."""
    canvas.beginForm(CONTINUATION_HEAD, 0, 0, *LANDSCAPE)
    head = Page(canvas)
    _draw_continuation_band(head, sheet)
    _draw_g703_header(head, layout)
    head.finish()
    canvas.endForm()


def _draw_continuation_band(page: Page, sheet: InvoiceSheet) -> None:
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
    page.text(MARGIN, top - 35, fit(project, BAND_STYLE, (page_width - 2 * MARGIN) * 0.55))
    right_lines = (
        f"Application no.: {header.application_number or NO_VALUE}",
        f"Invoice no.: {sheet.invoice_number or NO_VALUE}",
        f"Period: {format_date(header.period_start)} to {format_date(header.period_end)}",
    )
    for index, text in enumerate(right_lines):
        page.text_right(right_edge, top - 10 - 11 * index, text)
    page.rules(BLACK, 0.8, [(MARGIN, top - 43, right_edge, top - 43)], round_caps=False)


def _draw_g703_header(page: Page, layout: G703Layout) -> None:
    """The letter row and the title row, centred."""
    edges = layout.column_edges
    style = layout.title_style
    page.style(style)
    letter_bottom = G703_TOP - layout.letter_height
    cell_size = layout.cell_style.size
    baseline = middle_baseline(letter_bottom, layout.letter_height, cell_size, style.size)
    for index, (letter_key, _) in enumerate(G703_HEADERS):
        page.text_centred((edges[index] + edges[index + 1]) / 2, baseline, letter_key)
    title_bottom = letter_bottom - layout.title_height
    for index, lines in enumerate(layout.titles):
        centre = (edges[index] + edges[index + 1]) / 2
        lines_height = len(lines) * style.leading
        baseline = middle_baseline(title_bottom, layout.title_height, lines_height, style.size)
        for line in lines:
            page.text_centred(centre, baseline, line)
            baseline -= style.leading


def _draw_g703_rows(
    page: Page, layout: G703Layout, rows: Sequence[G703Row], row_bottoms: Sequence[float]
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


__all__ = [
    "G703Layout",
    "G703Row",
    "continuation_layout",
    "define_continuation_head",
    "draw_g703_page",
]
