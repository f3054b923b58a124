"""Formatting of money, percentages, dates and periods, shared by the PDFs and the messages, and
the backup's file name (`backup_file_name`)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
_ILLEGAL_FILE_NAME_CHARACTERS = re.compile(r'[/\\:*?"<>|\x00-\x1f\x7f]')


def format_money(amount: Decimal) -> str:
    """``Decimal("-1234.5")`` → ``"-$1,234.50"``; rounded half up to the cent."""
    rounded = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    return f"{sign}${abs(rounded):,.2f}"


def format_percent(value: Decimal) -> str:
    """``Decimal("10")`` → ``"10.00%"``."""
    return f"{value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}%"


def format_date(value: date | None) -> str:
    """``2026-10-31`` → ``"Oct 31, 2026"``; None → ``"—"``."""
    if value is None:
        return "—"
    return f"{value:%b} {value.day}, {value.year}"


def format_period(start: date | None, end: date | None) -> str:
    """A date range, short when it stays within a month: ``"Oct 1–31, 2026"``."""
    if start is None or end is None:
        return format_date(start or end)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start:%b} {start.day}–{end.day}, {end.year}"
    if start.year == end.year:
        return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"
    return f"{format_date(start)} – {format_date(end)}"


def generated_label(when: datetime) -> str:
    """``"Oct 31, 2026 at 14:05 PDT"``; the zone is left out for a naive datetime."""
    zone = when.tzname() or ""
    return f"{format_date(when.date())} at {when:%H:%M} {zone}".rstrip()


def backup_file_name(project_name: str, project_number: str, when: datetime) -> str:
    """`Subcontractor invoice backup - {name} - {number} - {YYYY-MM-DD} - {HHMM}.pdf`.

    `when` is already in the requester's time zone. Characters not allowed in file names
    (``/ \\ : * ? " < > |`` and control characters) become ``-``.
    """
    name = (
        f"Subcontractor invoice backup - {project_name} - {project_number} - "
        f"{when:%Y-%m-%d} - {when:%H%M}.pdf"
    )
    return _ILLEGAL_FILE_NAME_CHARACTERS.sub("-", name)
