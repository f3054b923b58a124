"""`InvoiceSheet` factories for tests and benches: a consistent G702/G703 sheet whose every line
is the same, its summary derived from the lines (10% retainage on the work completed and stored)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from pdf.documents import G702Header, G702Summary, G703Line, InvoiceSheet


def uniform_line(
    index: int,
    *,
    scheduled: Decimal,
    previous: Decimal,
    this_period: Decimal,
    stored: Decimal,
    item_number: Callable[[int], str] = str,
    description: str = "Work item {index}",
) -> G703Line:
    """G703 line ``index``: columns G, H, I and the 10% retainage computed from C, D, E, F."""
    completed = previous + this_period + stored
    return G703Line(
        item_number=item_number(index),
        description_of_work=description.format(index=index),
        scheduled_value=scheduled,
        work_completed_from_previous_application=previous,
        work_completed_this_period=this_period,
        materials_presently_stored=stored,
        total_completed_and_stored_to_date=completed,
        percent_complete=completed * 100 / scheduled,
        balance_to_finish=scheduled - completed,
        retainage=completed / 10,
    )


def uniform_sheet(
    invoice_number: str,
    application_number: int,
    lines: tuple[G703Line, ...],
    previous_certificates: Decimal,
) -> InvoiceSheet:
    """An approved sheet (Harbor Tower, Concrete Co, October 2026) with ``lines``; the G702
    summary sums them, holds 10% retainage on the work and none on stored materials, and ties out
    with ``previous_certificates`` already paid."""
    contract_sum = sum((line.scheduled_value for line in lines), Decimal(0))
    completed = sum((line.total_completed_and_stored_to_date for line in lines), Decimal(0))
    earned = completed - completed / 10
    return InvoiceSheet(
        invoice_number=invoice_number,
        status="approved",
        billing_date=date(2026, 10, 31),
        header=G702Header(
            to_general_contractor="Acme Builders",
            project_name="Harbor Tower",
            project_number="HT-100",
            application_number=str(application_number),
            period_start=date(2026, 10, 1),
            period_end=date(2026, 10, 31),
            subcontractor_name="Concrete Co",
            subcontractor_address="1 Main St, Springfield, IL 62701",
            contract_for="Concrete works",
            contract_date=date(2026, 1, 15),
        ),
        summary=G702Summary(
            original_contract_sum=contract_sum,
            net_change_by_change_orders=Decimal("0"),
            contract_sum_to_date=contract_sum,
            total_completed_and_stored_to_date=completed,
            completed_work_retainage_percent=Decimal("10"),
            completed_work_retainage_amount=completed / 10,
            stored_materials_retainage_percent=Decimal("0"),
            stored_materials_retainage_amount=Decimal("0"),
            total_retainage=completed / 10,
            total_earned_less_retainage=earned,
            less_previous_certificates_for_payment=previous_certificates,
            current_payment_due=earned - previous_certificates,
            balance_to_finish_including_retainage=contract_sum - earned,
        ),
        lines=lines,
    )
