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

This module only composes the parts: `pdf.invoice_layout` (styles, text helpers, `Page`, canvas
and footer), `pdf.g702` (page 1) and `pdf.g703` (continuation sheet).
"""

from __future__ import annotations

import io

from pdf.documents import InvoiceSheet
from pdf.g702 import draw_application, fitted_application_blocks
from pdf.g703 import continuation_layout, define_continuation_head, draw_g703_page
from pdf.invoice_layout import LANDSCAPE, PORTRAIT, Page, draw_footer, footer_text, new_canvas


def render_invoice(sheet: InvoiceSheet) -> bytes:
    """Render `sheet` as the default invoice PDF (G702 page + G703 continuation) and return it.

    Pure and thread-safe: no I/O beyond an in-memory buffer, no global state changed per call
    (`pdf.invoice_layout.fixed_lines` remembers how fixed texts wrap).
    Money is shown with `format_money`, percentages with `format_percent`.
    """
    application = fitted_application_blocks(sheet)
    continuation = continuation_layout(sheet.lines)
    page_count = 1 + len(continuation.pages)
    footer = footer_text(sheet)

    buffer = io.BytesIO()
    canvas = new_canvas(buffer, sheet)
    page = Page(canvas)
    draw_application(page, application)
    draw_footer(page, PORTRAIT[0], 1, page_count, footer)
    page.finish()
    canvas.showPage()
    canvas.setPageSize(LANDSCAPE)
    define_continuation_head(canvas, sheet, continuation)
    for page_number, rows in enumerate(continuation.pages, start=2):
        page = Page(canvas)
        draw_g703_page(page, continuation, rows)
        draw_footer(page, LANDSCAPE[0], page_number, page_count, footer)
        page.finish()
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


__all__ = ["render_invoice"]
