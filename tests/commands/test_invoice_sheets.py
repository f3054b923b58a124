"""From Procore's requisition JSON to the G702/G703 data."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from commands.invoice_sheets import build_invoice_sheet, parse_date
from sources.money import money_or_zero


def sheet(items: list[dict], summary: dict | None = None):
    return build_invoice_sheet(
        application_number=4,
        invoice_number=None,
        status_label="Approved",
        billing_date=date(2026, 10, 31),
        summary=summary or {},
        summary_text={
            "subcontractor_street": "1 Main St",
            "subcontractor_city": "Springfield",
            "subcontractor_state_code": "IL",
            "subcontractor_zip": "62701",
            "contract_date": "2026-06-15T00:00:00Z",
        },
        items=items,
    )


def test_derived_columns_are_computed_when_absent() -> None:
    line = sheet(
        [
            {
                "description_of_work": "Footings",
                "scheduled_value": "1,000.00",
                "work_completed_from_previous_application": "200.00",
                "work_completed_this_period": "150.50",
                "materials_presently_stored": "",
            }
        ]
    ).lines[0]
    assert line.item_number == "1"
    assert line.total_completed_and_stored_to_date == Decimal("350.50")
    assert line.percent_complete == Decimal("35.05")
    assert line.balance_to_finish == Decimal("649.50")
    assert line.retainage == Decimal(0)


def test_given_columns_win_and_header_is_assembled() -> None:
    result = sheet(
        [
            {
                "position": 7,
                "scheduled_value": "100",
                "total_completed_and_stored_to_date": "40",
                "total_completed_and_stored_to_date_percent": "40%",
                "balance_to_finish": "60",
                "total_retainage": "4.00",
            }
        ],
        {"current_payment_due": "-$1,234.56", "completed_work_retainage_percent": "10.0"},
    )
    line = result.lines[0]
    assert line.item_number == "7"
    assert (line.percent_complete, line.retainage) == (Decimal(40), Decimal(4))
    assert result.summary.current_payment_due == Decimal("-1234.56")
    assert result.summary.original_contract_sum == Decimal(0)
    assert result.invoice_number == "Application #4"
    assert result.header.application_number == "4"
    assert result.header.subcontractor_address == "1 Main St, Springfield, IL 62701"
    assert result.header.contract_date == date(2026, 6, 15)


@pytest.mark.parametrize("bad", ["abc", "1.2.3", True, [1]])
def test_bad_money_is_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        money_or_zero(bad)


def test_empty_dates_and_amounts() -> None:
    assert parse_date("") is None and parse_date(None) is None
    assert money_or_zero(None) == money_or_zero("  ") == Decimal(0)


def test_change_order_lines_are_recognised_and_deductions_shown_positive() -> None:
    result = sheet(
        [
            {"scheduled_value": "100"},
            {"scheduled_value": "10", "change_order_package_id": 55},
            {"scheduled_value": "5", "item_type": "ChangeOrderLineItem"},
            {"scheduled_value": "5", "item_type": "change_order_item"},
            {"scheduled_value": "1", "item_type": "line_item", "change_order_package_id": ""},
        ],
        {
            "negative_previous_change_order_item_total": "-2,000.00",
            "negative_new_change_order_item_total": "250.00",
        },
    )
    assert [line.is_change_order for line in result.lines] == [False, True, True, True, False]
    assert result.summary.previous_change_order_deductions == Decimal("2000.00")
    assert result.summary.new_change_order_deductions == Decimal("250.00")
