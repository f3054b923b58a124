"""Turn a stored requisition (Procore `summary`, `summary_text`, `items`) into an `InvoiceSheet`.

Money arrives as strings (``"1,234.50"``, ``"-$5"``), parsed exactly by `sources.money`.
Derivable G703 columns (G, H, I) are computed when the item does not carry them. Change-order
deductions are shown as positive amounts (the G702 box subtracts them), whatever sign Procore's
``negative_*_change_order_item_total`` carries. An item is a change-order line when it names a
change order (``change_order_package_id``, ``commitment_change_order_id``, ``change_order_id``)
or its ``item_type`` says so.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from pdf.documents import ZERO, G702Header, G702Summary, G703Line, InvoiceSheet
from sources.money import money_or_zero

HUNDRED = Decimal("100")
CHANGE_ORDER_KEYS = ("change_order_package_id", "commitment_change_order_id", "change_order_id")
NOT_LETTERS = re.compile(r"[^a-z]")


def parse_date(value: Any) -> date | None:
    """An ISO date (``"2026-10-31"``, or the date part of a timestamp), or None."""
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _address(summary_text: dict[str, Any]) -> str:
    street = summary_text.get("subcontractor_street") or ""
    city = summary_text.get("subcontractor_city") or ""
    state = summary_text.get("subcontractor_state_code") or ""
    postal = summary_text.get("subcontractor_zip") or ""
    country = summary_text.get("subcontractor_country_code") or ""
    locality = " ".join(part for part in (f"{city}," if city else "", state, postal) if part)
    return ", ".join(part for part in (street, locality.strip(" ,"), country) if part)


def _header(summary_text: dict[str, Any], application_number: int) -> G702Header:
    return G702Header(
        to_general_contractor=str(summary_text.get("to_general_contractor") or ""),
        project_name=str(summary_text.get("project_name") or ""),
        project_number=str(summary_text.get("project_number") or ""),
        application_number=str(summary_text.get("application_number") or application_number),
        period_start=parse_date(summary_text.get("requisition_period_start")),
        period_end=parse_date(summary_text.get("requisition_period_end")),
        subcontractor_name=str(summary_text.get("subcontractor_name") or ""),
        subcontractor_address=_address(summary_text),
        contract_for=str(summary_text.get("contract_for") or ""),
        contract_date=parse_date(summary_text.get("contract_date")),
    )


def _summary(summary: dict[str, Any]) -> G702Summary:
    def money(key: str) -> Decimal:
        return money_or_zero(summary.get(key))

    return G702Summary(
        original_contract_sum=money("original_contract_sum"),
        net_change_by_change_orders=money("net_change_by_change_orders"),
        contract_sum_to_date=money("contract_sum_to_date"),
        total_completed_and_stored_to_date=money("total_completed_and_stored_to_date"),
        completed_work_retainage_percent=money("completed_work_retainage_percent"),
        completed_work_retainage_amount=money("completed_work_retainage_amount"),
        stored_materials_retainage_percent=money("stored_materials_retainage_percent"),
        stored_materials_retainage_amount=money("stored_materials_retainage_amount"),
        total_retainage=money("total_retainage"),
        total_earned_less_retainage=money("total_earned_less_retainage"),
        less_previous_certificates_for_payment=money("less_previous_certificates_for_payment"),
        current_payment_due=money("current_payment_due"),
        balance_to_finish_including_retainage=money("balance_to_finish_including_retainage"),
        previous_change_order_additions=money("positive_previous_change_order_item_total"),
        previous_change_order_deductions=abs(money("negative_previous_change_order_item_total")),
        new_change_order_additions=money("positive_new_change_order_item_total"),
        new_change_order_deductions=abs(money("negative_new_change_order_item_total")),
    )


def is_change_order_item(item: dict[str, Any]) -> bool:
    """Whether a G703 item is a change order listed as a line (see the module docstring)."""
    if any(item.get(key) not in (None, "") for key in CHANGE_ORDER_KEYS):
        return True
    return "changeorder" in NOT_LETTERS.sub("", str(item.get("item_type") or "").lower())


def _line(item: dict[str, Any], index: int) -> G703Line:
    scheduled = money_or_zero(item.get("scheduled_value"))
    previous = money_or_zero(item.get("work_completed_from_previous_application"))
    this_period = money_or_zero(item.get("work_completed_this_period"))
    stored = money_or_zero(item.get("materials_presently_stored"))
    if item.get("total_completed_and_stored_to_date") not in (None, ""):
        completed = money_or_zero(item["total_completed_and_stored_to_date"])
    else:
        completed = previous + this_period + stored
    if item.get("total_completed_and_stored_to_date_percent") not in (None, ""):
        percent = money_or_zero(item["total_completed_and_stored_to_date_percent"])
    else:
        percent = (completed / scheduled * HUNDRED) if scheduled else ZERO
    if item.get("balance_to_finish") not in (None, ""):
        balance = money_or_zero(item["balance_to_finish"])
    else:
        balance = scheduled - completed
    number = item.get("item_number") or item.get("position") or index
    return G703Line(
        item_number=str(number),
        description_of_work=str(item.get("description_of_work") or item.get("description") or ""),
        scheduled_value=scheduled,
        work_completed_from_previous_application=previous,
        work_completed_this_period=this_period,
        materials_presently_stored=stored,
        total_completed_and_stored_to_date=completed,
        percent_complete=percent,
        balance_to_finish=balance,
        retainage=money_or_zero(item.get("total_retainage", item.get("retainage"))),
        is_change_order=is_change_order_item(item),
    )


def build_invoice_sheet(
    *,
    application_number: int,
    invoice_number: str | None,
    status_label: str,
    billing_date: date | None,
    summary: dict[str, Any],
    summary_text: dict[str, Any],
    items: list[dict[str, Any]],
) -> InvoiceSheet:
    """The G702/G703 data of one requisition."""
    return InvoiceSheet(
        invoice_number=invoice_number or f"Application #{application_number}",
        status=status_label,
        billing_date=billing_date,
        header=_header(summary_text or {}, application_number),
        summary=_summary(summary or {}),
        lines=tuple(_line(item, index) for index, item in enumerate(items or [], start=1)),
    )
