"""Formatting of money, percentages, dates and periods, shared by the PDFs and the messages."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


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
