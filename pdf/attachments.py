"""Triage of one input PDF (an attachment or a signed invoice) before it is merged.

`triage_pdf(path, content_type, scratch_dir)` decides, for one file on its own, whether it can go
into the backup, and never raises. It answers `Accepted` (the file to merge, its page count,
whether it had to be repaired) or `Rejected` (a short reason for the cover page):

- "missing file", "empty file", "too large" (bytes or pages over the caps), "no pages";
- "not a PDF (image/png)": the bytes decide, not the name; a `.pdf` holding a PNG is not a PDF;
- "password-protected": a real user password (empty user passwords are opened, RC4 and AES);
- "damaged": pypdf cannot read it and a repair pass with qpdf (pikepdf open + save, stream data
  preserved, written to `scratch_dir`) fails; if the repair works the copy is checked again and
  accepted with `repaired=True`;
- "could not be read safely": pypdf's decompression limits trip even on the repaired copy (a
  decompression bomb), or memory runs out.

The check uses pypdf's parser with its decompression limits and reads the trailer, the
encryption dictionary and the page tree only; image streams are never decoded. qpdf has no
decompression limits and pure-Python parsing of a hostile file can be slow, so `assemble_backup`
runs this in a child process with a memory cap and a per-file deadline (`pdf.inspection`);
`precheck_file` holds the checks that need no parser and run in the parent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pikepdf
from pypdf import PasswordType, PdfReader, apply_configuration
from pypdf.errors import FileNotDecryptedError, LimitReachedError, WrongPasswordError

MAX_INPUT_BYTES = 300 * 1024 * 1024
MAX_INPUT_PAGES = 2_000
_HEADER_WINDOW = 1024
_DEFAULT_DECLARED_STREAM_LIMIT = 75_000_000

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
class Accepted:
    """A PDF that can be merged: `path` is the original or its repaired copy."""

    path: str
    page_count: int
    repaired: bool = False


@dataclass(frozen=True)
class Rejected:
    """A file left out of the backup, with the reason shown on the cover."""

    reason: str


TriageResult = Accepted | Rejected


class _Rejection(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NeedsRepair(Exception):
    """pypdf could not read the file; qpdf may still recover it."""


def triage_pdf(path: str | None, content_type: str, scratch_dir: str) -> TriageResult:
    """Decide whether the file at `path` can be merged; repaired copies go in `scratch_dir`."""
    try:
        rejected = precheck_file(path, content_type)
        if rejected is not None or path is None:
            return rejected or Rejected(MISSING_FILE)
        try:
            return Accepted(path=path, page_count=_count_pages_safely(path))
        except _NeedsRepair as error:
            limit_reached = isinstance(error.__cause__, LimitReachedError)
            return _repair_and_recheck(path, scratch_dir, limit_reached=limit_reached)
    except _Rejection as rejection:
        return Rejected(rejection.reason)
    except FileNotFoundError:
        return Rejected(MISSING_FILE)
    except MemoryError:
        return Rejected(UNSAFE)
    except Exception:  # one bad file must never fail the backup
        return Rejected(DAMAGED)


def precheck_file(path: str | None, content_type: str) -> Rejected | None:
    """Checks that need no PDF parser: presence, size, and what the first bytes are."""
    if path is None or not os.path.isfile(path):
        return Rejected(MISSING_FILE)
    size = os.path.getsize(path)
    if size == 0:
        return Rejected(EMPTY_FILE)
    if size > MAX_INPUT_BYTES:
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


def _count_pages_safely(path: str) -> int:
    """Open with pypdf under its limits, decrypt with the empty password, count the pages.

    A stream's declared length cannot exceed the file, so that limit is raised to the file's
    size: a legitimate 82 MB scanned page is not a false alarm. Decompression limits stay.
    """
    declared_stream_limit = max(_DEFAULT_DECLARED_STREAM_LIMIT, os.path.getsize(path))
    with (
        apply_configuration(maximum_declared_stream_length=declared_stream_limit),
        open(path, "rb") as handle,
    ):
        try:
            reader = PdfReader(handle, strict=False)
            if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
                raise _Rejection(PASSWORD_PROTECTED)
            page_count = len(reader.pages)
            for page in reader.pages:
                _ = page.mediabox
        except (FileNotDecryptedError, WrongPasswordError) as error:
            raise _Rejection(PASSWORD_PROTECTED) from error
        except (_Rejection, MemoryError):
            raise
        except Exception as error:  # PyPdfError, LimitReachedError, ValueError, RecursionError, …
            raise _NeedsRepair from error  # (a garbage xref also trips the limits)
    if page_count == 0:
        raise _Rejection(NO_PAGES)
    if page_count > MAX_INPUT_PAGES:
        raise _Rejection(TOO_LARGE)
    return page_count


def _repair_and_recheck(path: str, scratch_dir: str, *, limit_reached: bool) -> TriageResult:
    """Re-save with qpdf's recovery, then check the copy again (no second repair).

    qpdf reports running out of memory as damage ("unable to find /Root dictionary"), so a
    file that tripped pypdf's limits and cannot be repaired is "could not be read safely".
    """
    failed = UNSAFE if limit_reached else DAMAGED
    target = str(Path(scratch_dir) / f"repaired-{os.urandom(6).hex()}.pdf")
    try:
        with pikepdf.open(path, attempt_recovery=True) as pdf:
            if len(pdf.pages) == 0:
                return Rejected(failed)
            # Streams are copied as they are (nothing is decoded); object streams are
            # written compressed again, so a decompression bomb stays one and is caught below.
            pdf.save(
                target,
                stream_decode_level=pikepdf.StreamDecodeLevel.none,
                object_stream_mode=pikepdf.ObjectStreamMode.preserve,
            )
    except pikepdf.PasswordError:
        return Rejected(PASSWORD_PROTECTED)
    except MemoryError:
        return Rejected(UNSAFE)
    except Exception:
        return Rejected(failed)
    try:
        return Accepted(path=target, page_count=_count_pages_safely(target), repaired=True)
    except _NeedsRepair as error:
        return Rejected(UNSAFE if isinstance(error.__cause__, LimitReachedError) else DAMAGED)


def result_to_json(result: TriageResult) -> dict[str, Any]:
    """A JSON-able form of a triage result (to pass it between processes)."""
    if isinstance(result, Accepted):
        return {"path": result.path, "page_count": result.page_count, "repaired": result.repaired}
    return {"reason": result.reason}


def result_from_json(data: dict[str, Any]) -> TriageResult:
    """The inverse of `result_to_json`."""
    if "reason" in data:
        return Rejected(str(data["reason"]))
    return Accepted(str(data["path"]), int(data["page_count"]), bool(data["repaired"]))
