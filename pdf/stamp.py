"""Stamp "Backup page N of M" on every page of a pikepdf document.

Each page gets a small Form XObject as big as the page as displayed (width and height swapped
for /Rotate 90 and 270) that draws the label at the bottom right on a small white patch. qpdf's
placement (`calc_form_xobject_placement`, the code behind pikepdf's `add_overlay`) puts it on
the page's crop box and undoes the page's /Rotate (and /UserUnit), so the label is upright and at
the displayed bottom right on rotated pages too.

The stamp only adds content streams (`q` before, one stream all pages share; `Q` + the stamp
after): the page's own streams are neither decoded nor rewritten, so pages that share one content
stream each get only their own stamp, and a hostile content stream is never decompressed here.
(`Page.add_overlay` itself would also coalesce, i.e. decode and rewrite, every page's content.)
The label uses the standard Helvetica font, which is never embedded; the forms share one
resource dictionary naming it (fewer objects per page: qpdf keeps each in memory until the write).
"""

from __future__ import annotations

import zlib

import pikepdf
from pikepdf import Name, Rectangle
from reportlab.pdfbase.pdfmetrics import stringWidth

STAMP_FONT = "Helvetica"
STAMP_FONT_SIZE = 8.0
STAMP_RIGHT_MARGIN = 36.0  # lines up with the right margin of the invoice and cover pages
STAMP_BASELINE = 38.0  # above the invoice footer and its rule (to 31 pt), below its body (54 pt)
STAMP_PADDING = 2.5
STAMP_GREY = 0.2
_MIN_BOX_SIDE = 72.0
_FALLBACK_BOX = Rectangle(0, 0, 612, 792)


def page_label(number: int, total: int) -> str:
    """The text stamped on page `number` of `total`."""
    return f"Backup page {number} of {total}"


def stamp_page_numbers(pdf: pikepdf.Pdf) -> None:
    """Stamp every page of `pdf` with its backup page number, in place."""
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name("/" + STAMP_FONT),
            Encoding=Name.WinAnsiEncoding,
        )
    )
    resources = pdf.make_indirect(pikepdf.Dictionary(Font=pikepdf.Dictionary(StampFont=font)))
    save_state = pdf.make_stream(b"q\n")  # one stream in front of every page's content
    total = len(pdf.pages)
    for number, page in enumerate(pdf.pages, start=1):
        box = _visible_box(page)
        form = _stamp_form(pdf, resources, page_label(number, total), _displayed_size(page, box))
        _place(page, form, box, save_state)


def _visible_box(page: pikepdf.Page) -> Rectangle:
    """The crop box, or the media box when the crop box is degenerate."""
    for box in (page.cropbox, page.mediabox):
        try:
            rectangle = Rectangle(box)
        except (TypeError, ValueError, pikepdf.PdfError):
            continue
        if rectangle.width >= _MIN_BOX_SIDE and rectangle.height >= _MIN_BOX_SIDE:
            return rectangle
    return _FALLBACK_BOX


def _displayed_size(page: pikepdf.Page, box: Rectangle) -> tuple[float, float]:
    if page.rotation in (90, 270):
        return box.height, box.width
    return box.width, box.height


def _stamp_form(
    pdf: pikepdf.Pdf, resources: pikepdf.Object, label: str, size: tuple[float, float]
) -> pikepdf.Stream:
    """A Form XObject of the displayed page size drawing `label` at the bottom right."""
    width, height = size
    label_width = stringWidth(label, STAMP_FONT, STAMP_FONT_SIZE)
    right = width - min(STAMP_RIGHT_MARGIN, width / 8)
    baseline = min(STAMP_BASELINE, height / 8)
    patch_left = right - label_width - STAMP_PADDING
    patch_bottom = baseline - STAMP_PADDING - 1.5
    patch_width = label_width + 2 * STAMP_PADDING
    patch_height = STAMP_FONT_SIZE + 2 * STAMP_PADDING
    drawing = (
        f"q 1 g {patch_left:.2f} {patch_bottom:.2f} {patch_width:.2f} {patch_height:.2f} re f Q\n"
        f"BT /StampFont {STAMP_FONT_SIZE:g} Tf {STAMP_GREY:g} g "
        f"{right - label_width:.2f} {baseline:.2f} Td ({label}) Tj ET\n"
    ).encode("ascii")
    form = pikepdf.Stream(pdf, zlib.compress(drawing))
    form.Filter = Name.FlateDecode
    form.Type = Name.XObject
    form.Subtype = Name.Form
    form.BBox = pikepdf.Array([0, 0, width, height])
    form.Resources = resources
    return form


def _place(
    page: pikepdf.Page, form: pikepdf.Stream, box: Rectangle, save_state: pikepdf.Stream
) -> None:
    """Draw `form` over `page`'s visible box, upright whatever the page's rotation.
    `save_state` is the shared ``q`` stream put in front of the page's own content."""
    name = page.add_resource(form, Name.XObject, prefix="BackupStamp")
    placement = page.calc_form_xobject_placement(
        form, name, box, invert_transformations=True, allow_shrink=True, allow_expand=True
    )
    page.contents_add(save_state, prepend=True)
    page.contents_add(b"Q\n" + placement)
