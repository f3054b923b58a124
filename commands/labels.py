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


def invoice_option_label(
    application_number: int,
    contract_number: str,
    vendor_name: str,
    period_month: date | None,
    current_payment_due: Decimal,
    status: str,
) -> str:
    """``"#3 · SC-001 Acme Concrete · Oct 2026 · $12,345.00 · Approved"``, at most 75 chars.

    When too long, the vendor name is shortened first (with an ellipsis), then the status.
    """
    month = f"{period_month:%b %Y}" if period_month else "no period"
    head = f"#{application_number} · {contract_number} "
    tail = f" · {month} · {format_money(current_payment_due)} · {status_label(status)}"
    room = OPTION_LABEL_LIMIT - len(head) - len(tail)
    vendor = vendor_name if len(vendor_name) <= room else vendor_name[: max(room - 1, 0)] + "…"
    label = f"{head}{vendor}{tail}"
    return label if len(label) <= OPTION_LABEL_LIMIT else label[: OPTION_LABEL_LIMIT - 1] + "…"
