"""Triage of one input PDF (an attachment or a signed invoice) as it is opened for the merge.

`open_for_merge(path, content_type)` decides, for one file on its own, whether it can go into the
backup, and never raises because of the file. It answers an `Opened` (the open `pikepdf.Pdf` to
merge, whether qpdf had to repair it) or a `Rejected` (a short reason for the cover page):

- "missing file", "empty file", "too large" (bytes or pages over the caps), "no pages";
- "not a PDF (image/png)": the bytes decide, not the name; a `.pdf` holding a PNG is not a PDF;
- "password-protected": a real user password (empty user passwords are opened, RC4 and AES);
- "damaged": qpdf cannot open it even with its recovery; a file it recovers (it warned while
  opening) is merged as recovered and reported as repaired;
- "could not be read safely": a stream inflates past `MAX_INFLATED_BYTES` (a decompression
  bomb: qpdf's own Flate limit trips), or memory runs out (qpdf turns that into damage; its
  warnings tell), or the file overruns its deadline (`pdf.inspection`).

The file is parsed once, by qpdf (pikepdf), and the same open document is merged: there is no second
parser. It is opened through a qpdf job (`open_lazily`), not `pikepdf.open`: pikepdf turns on qpdf's
"immediate copy" for every file it opens, which copies a source's stream data into memory as soon as
its pages are appended to another document; a document a job opened leaves it off, so the stream
data stays in the file until the backup is written (the caller keeps the `Opened` document open
until then). qpdf parses in C++ and its only decompression limit is the one set here, so
`pdf.inspection` runs the whole assembly in a child process with a memory cap per file and a
per-file deadline. `precheck_file` holds the checks that need no parser (the parent runs them).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pikepdf

MAX_INPUT_BYTES = 300 * 1024 * 1024
MAX_INPUT_PAGES = 2_000
MAX_INFLATED_BYTES = 75_000_000  # the most one Flate stream may inflate to while parsing


@dataclass(frozen=True)
class InputLimits:
    """The limits one input file is held to. `current_limits` reads them where the work is
    planned; the work carries them to the process that opens the files (`pdf.inspection`: a
    fork or a fresh interpreter), so both apply the same ones."""

    max_bytes: int
    max_pages: int
    max_inflated_bytes: int


def current_limits() -> InputLimits:
    """The limits as this process's module settings say now."""
    return InputLimits(MAX_INPUT_BYTES, MAX_INPUT_PAGES, MAX_INFLATED_BYTES)


_HEADER_WINDOW = 1024
_QPDF_LOGGER = "pikepdf._core"
_UNSAFE_WARNINGS = ("memory limit", "bad_alloc")  # qpdf's Flate limit, memory cap reached

MISSING_FILE = "missing file"
EMPTY_FILE = "empty file"
TOO_LARGE = "too large"
NO_PAGES = "no pages"
PASSWORD_PROTECTED = "password-protected"
DAMAGED = "damaged"
UNSAFE = "could not be read safely"

_PDF_CONTENT_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_MAGIC_NUMBERS: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"BM", "image/bmp"),
    (b"RIFF", "image/webp"),
    (b"PK\x03\x04", "application/zip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/msword"),
    (b"{\\rtf", "application/rtf"),
)
_MARKUP_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"<!doctype html", "text/html"),
    (b"<html", "text/html"),
    (b"<?xml", "application/xml"),
)


@dataclass(frozen=True)
class Rejected:
    """A file left out of the backup, with the reason shown on the cover."""

    reason: str


@dataclass
class Opened:
    """An input that passed triage: the open document (the caller closes it)."""

    pdf: pikepdf.Pdf
    page_count: int
    repaired: bool


def open_for_merge(
    path: str | None,
    content_type: str,
    *,
    lazily: bool,
    limits: InputLimits,
) -> Opened | Rejected:
    """Open the file at `path` for the merge, or say why it is left out.

    `lazily` (`open_lazily`): appending the pages leaves their stream data in the file, which
    stays open until the caller closes the document; else it is opened with `pikepdf.open` and
    appending copies the stream data into memory (the document can be closed straight after).

    `MemoryError` is let through: after it the process may be in a bad state, and the caller
    (`pdf.inspection`) treats it as the file's death.
    """
    rejected = precheck_file(path, content_type, limits)
    if rejected is not None or path is None:
        return rejected or Rejected(MISSING_FILE)
    with _qpdf_warnings(limits.max_inflated_bytes) as warnings:
        try:
            pdf = open_lazily(path) if lazily else pikepdf.open(path, suppress_warnings=False)
        except pikepdf.PasswordError:
            return Rejected(PASSWORD_PROTECTED)
        except FileNotFoundError:
            return Rejected(MISSING_FILE)
        except MemoryError:
            raise
        except Exception:  # PdfError and whatever a hostile file makes qpdf raise
            return Rejected(UNSAFE if _limit_tripped(warnings) else DAMAGED)
        try:
            page_count = len(pdf.pages)
            for page in pdf.pages:
                _ = page.mediabox
        except MemoryError:
            pdf.close()
            raise
        except Exception:
            pdf.close()
            return Rejected(UNSAFE if _limit_tripped(warnings) else DAMAGED)
    reason = None
    if _limit_tripped(warnings):
        reason = UNSAFE
    elif page_count == 0:
        reason = NO_PAGES
    elif page_count > limits.max_pages:
        reason = TOO_LARGE
    if reason is not None:
        pdf.close()
        return Rejected(reason)
    return Opened(pdf, page_count, repaired=bool(warnings))


def open_lazily(path: str) -> pikepdf.Pdf:
    """Open the PDF at `path` like `pikepdf.open` (qpdf's recovery on, an empty user password
    tried, warnings to pikepdf's logger) but so that appending its pages to another document
    does not copy their stream data into memory: it is read from this file when the other
    document is written, so this one must stay open until then.
    """
    return pikepdf.Job(json.dumps({"inputFile": path, "outputFile": "-"})).create_pdf()


@contextmanager
def _qpdf_warnings(max_inflated_bytes: int) -> Iterator[list[str]]:
    """Collect what qpdf warns while a file is opened (kept out of the application's log),
    with qpdf's Flate limit at `max_inflated_bytes`."""
    collected: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage().strip()
            if message and message != "WARNING:":
                collected.append(message)

    logger = logging.getLogger(_QPDF_LOGGER)
    handler = _Collect(level=logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    previous = pikepdf.settings.set_qpdf_limits(flate_max_memory=max_inflated_bytes)
    try:
        yield collected
    finally:
        pikepdf.settings.set_qpdf_limits(**previous)
        logger.removeHandler(handler)
        logger.propagate = propagate


def _limit_tripped(warnings: list[str]) -> bool:
    return any(sign in warning for warning in warnings for sign in _UNSAFE_WARNINGS)


def precheck_file(path: str | None, content_type: str, limits: InputLimits) -> Rejected | None:
    """Checks that need no PDF parser: presence, size, and what the first bytes are."""
    if path is None or not os.path.isfile(path):
        return Rejected(MISSING_FILE)
    size = os.path.getsize(path)
    if size == 0:
        return Rejected(EMPTY_FILE)
    if size > limits.max_bytes:
        return Rejected(TOO_LARGE)
    with open(path, "rb") as handle:
        head = handle.read(_HEADER_WINDOW)
    if b"%PDF-" in head:
        return None
    declared = content_type.strip().lower()
    sniffed = sniff_content_type(head)
    if sniffed is not None:
        specific = declared not in _PDF_CONTENT_TYPES | _GENERIC_CONTENT_TYPES
        return Rejected(f"not a PDF ({declared if specific else sniffed})")
    if declared not in _PDF_CONTENT_TYPES and not path.lower().endswith(".pdf"):
        return Rejected(f"not a PDF ({declared or 'unknown type'})")
    return None  # says it is a PDF but has no header: the parser and the repair pass judge


def sniff_content_type(head: bytes) -> str | None:
    """The content type the first bytes of a file reveal, if they match a known non-PDF format."""
    for magic, content_type in _MAGIC_NUMBERS:
        if head.startswith(magic):
            return content_type
    text = head.lstrip().lower()
    for prefix, content_type in _MARKUP_PREFIXES:
        if text.startswith(prefix):
            return content_type
    return None
