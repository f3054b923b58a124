"""Human labels for invoices, statuses and billing periods, shared by menus, messages and PDFs."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from pdf.formatting import format_money, format_period

INVOICE_STATUS_LABELS: dict[str, str] = {
    "draft": "Draft",
    "under_review": "Under Review",
    "revise_and_resubmit": "Revise & Resubmit",
    "pending_owner_approval": "Pending Owner Approval",
    "approved_as_noted": "Approved as Noted",
    "approved": "Approved",
}

OPTION_LABEL_LIMIT = 75


def status_label(status: str) -> str:
    """``"approved_as_noted"`` → ``"Approved as Noted"``; unknown values are title-cased."""
    return INVOICE_STATUS_LABELS.get(status, status.replace("_", " ").title())


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting ``SC-2`` before ``SC-10`` (digits compare as numbers)."""
    parts = re.split(r"(\d+)", text.casefold())
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)


def billing_period_label(position: int | None, start: date | None, end: date | None) -> str:
    """``"Billing period 11 (Oct 1–31, 2026)"``."""
    if position is None:
        return "No billing period"
    return f"Billing period {position} ({format_period(start, end)})"


def invoice_reference(application_number: int, contract_number: str, vendor_name: str) -> str:
    """How messages name an invoice: ``"SC-001 Acme Concrete · Application #3"``."""
    return f"{contract_number} {vendor_name} · Application #{application_number}"


def shorten_middle(text: str, room: int) -> str:
    """``text`` in at most ``room`` characters, its middle replaced by ``…`` when too long
    (the start and the end are what tell names apart)."""
    if len(text) <= room:
        return text
    if room <= 1:
        return "…"[:room]
    tail = (room - 1) // 2
    head = room - 1 - tail
    if not tail:
        return text[:head] + "…"
    return f"{text[:head].rstrip()}…{text[len(text) - tail :].lstrip()}"


OPTION_SEPARATOR = " · "
# An identifying part longer than this (a contract or invoice number) is shortened in labels.
LABEL_KEY_LIMIT = 20
# The vendor name keeps at least this many characters before period/amount/status give way.
LABEL_VENDOR_MIN = 24


def invoice_option_label(
    contract_number: str,
    vendor_name: str,
    application_number: int,
    invoice_number: str | None,
    period_month: date | None,
    current_payment_due: Decimal,
    status: str,
) -> str:
    """``"SC-001 Acme Concrete · #3 · Inv A-1043 · $12,345.00 · Approved"``, at most 75
    characters; with ``period_month`` (for an invoice whose group header does not show its
    dates, e.g. one without a billing period) ``"… · Inv A-1043 · Oct 2026 · $12,345.00 · …"``.

    The contract, vendor, application number and subcontractor's invoice number always show
    (a long vendor name shortened from the middle, down to `LABEL_VENDOR_MIN` characters); the
    month, amount and status follow as room allows: the status goes first, then the amount,
    then the month.
    """
    contract = shorten_middle(contract_number, LABEL_KEY_LIMIT)
    identity = [f"#{application_number}"]
    if invoice_number:
        identity.append(f"Inv {shorten_middle(invoice_number, LABEL_KEY_LIMIT)}")
    extras = [format_money(current_payment_due), status_label(status)]
    if period_month is not None:
        extras.insert(0, f"{period_month:%b %Y}")
    for kept in range(len(extras), -1, -1):
        tail = OPTION_SEPARATOR + OPTION_SEPARATOR.join(identity + extras[:kept])
        room = OPTION_LABEL_LIMIT - len(contract) - 1 - len(tail)
        if room >= min(len(vendor_name), LABEL_VENDOR_MIN) or kept == 0:
            vendor = shorten_middle(vendor_name, max(room, 1))
            name = f"{contract} {vendor}" if vendor else contract
            return f"{name}{tail}"[:OPTION_LABEL_LIMIT]
    raise AssertionError("unreachable: the loop returns when nothing optional is left")


def more_matches_label(count: int, at_least: bool) -> str:
    """The closing option of a full menu: ``"1,234 more match: type more to narrow the list"``."""
    return f"{count:,}{'+' if at_least else ''} more match: type more to narrow the list"
