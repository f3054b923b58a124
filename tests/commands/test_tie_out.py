"""The tie-out check: one deliberate error per rule, and a property over random sheets."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.tie_out import check_invoice, tie_out_reason
from pdf.documents import ZERO, G702Header, G702Summary, G703Line, InvoiceSheet, TieOutFinding

D = Decimal
HEADER = G702Header("GC", "Project", "P-1", "4", None, None, "Sub", "", "Work", None)


def row(
    item: str,
    scheduled: str,
    previous: str,
    this_period: str,
    stored: str,
    retainage: str,
    *,
    is_change_order: bool = False,
) -> G703Line:
    """A consistent G703 row: G, H and I computed from C, D, E and F."""
    completed = D(previous) + D(this_period) + D(stored)
    return G703Line(
        item_number=item,
        description_of_work=f"Line {item}",
        scheduled_value=D(scheduled),
        work_completed_from_previous_application=D(previous),
        work_completed_this_period=D(this_period),
        materials_presently_stored=D(stored),
        total_completed_and_stored_to_date=completed,
        percent_complete=completed / D(scheduled) * 100 if D(scheduled) else ZERO,
        balance_to_finish=D(scheduled) - completed,
        retainage=D(retainage),
        is_change_order=is_change_order,
    )


# Ties out: C 150,000 = line 3; G 37,500 = line 4; J 3,625 = 10% of D+E 35,000 + 5% of F 2,500.
BASE = InvoiceSheet(
    invoice_number="INV-4",
    status="Approved",
    billing_date=None,
    header=HEADER,
    summary=G702Summary(
        original_contract_sum=D("140000.00"),
        net_change_by_change_orders=D("10000.00"),
        contract_sum_to_date=D("150000.00"),
        total_completed_and_stored_to_date=D("37500.00"),
        completed_work_retainage_percent=D("10.0"),
        completed_work_retainage_amount=D("3500.00"),
        stored_materials_retainage_percent=D("5.0"),
        stored_materials_retainage_amount=D("125.00"),
        total_retainage=D("3625.00"),
        total_earned_less_retainage=D("33875.00"),
        less_previous_certificates_for_payment=D("20000.00"),
        current_payment_due=D("13875.00"),
        balance_to_finish_including_retainage=D("116125.00"),
        previous_change_order_additions=D("12000.00"),
        previous_change_order_deductions=D("2000.00"),
    ),
    lines=(
        row("1", "100000.00", "20000.00", "10000.00", "0.00", "3000.00"),
        row("2", "50000.00", "0.00", "5000.00", "2500.00", "625.00"),
    ),
)


def with_summary(**changes: Any) -> InvoiceSheet:
    return replace(BASE, summary=replace(BASE.summary, **changes))


def with_row(index: int, **changes: Any) -> InvoiceSheet:
    lines = list(BASE.lines)
    lines[index] = replace(lines[index], **changes)
    return replace(BASE, lines=tuple(lines))


def test_the_base_sheet_ties_out() -> None:
    assert check_invoice(BASE) == ()


# (case, sheet with one error, where, rule, shown, expected)
ONE_ERROR_PER_RULE = [
    (
        "3 = 1 + 2",
        with_summary(original_contract_sum=D("140000.50")),
        "G702 line 3 (contract sum to date)",
        "line 1 + line 2",
        "150000.00",
        "150000.50",
    ),
    (
        "5 = 5a + 5b",  # 5a's percentage not given, so only the sum can catch it
        with_summary(
            completed_work_retainage_percent=ZERO, completed_work_retainage_amount=D("3500.25")
        ),
        "G702 line 5 (total retainage)",
        "line 5a + line 5b",
        "3625.00",
        "3625.25",
    ),
    (
        "6 = 4 - 5",  # lines 8 and 9 follow the wrong line 6
        with_summary(
            total_earned_less_retainage=D("33875.10"),
            current_payment_due=D("13875.10"),
            balance_to_finish_including_retainage=D("116124.90"),
        ),
        "G702 line 6 (total earned less retainage)",
        "line 4 - line 5 total",
        "33875.10",
        "33875.00",
    ),
    (
        "8 = 6 - 7",
        with_summary(current_payment_due=D("13785.00")),
        "G702 line 8 (current payment due)",
        "line 6 - line 7",
        "13785.00",
        "13875.00",
    ),
    (
        "9 = 3 - 6",
        with_summary(balance_to_finish_including_retainage=D("116125.01")),
        "G702 line 9 (balance to finish incl. retainage)",
        "line 3 - line 6",
        "116125.01",
        "116125.00",
    ),
    (
        "5a = % of D + E",
        with_summary(completed_work_retainage_percent=D("11")),
        "G702 line 5a (retainage on completed work)",
        "11% of G703 columns D + E (35,000.00)",
        "3500.00",
        "3850.00",
    ),
    (
        "5b = % of F",
        with_summary(stored_materials_retainage_percent=D("10")),
        "G702 line 5b (retainage on stored material)",
        "10% of G703 column F (2,500.00)",
        "125.00",
        "250.00",
    ),
    (
        "line 4 = G total",  # lines 6, 8 and 9 follow the wrong line 4
        with_summary(
            total_completed_and_stored_to_date=D("37600.00"),
            total_earned_less_retainage=D("33975.00"),
            current_payment_due=D("13975.00"),
            balance_to_finish_including_retainage=D("116025.00"),
        ),
        "G702 line 4 (total completed and stored to date)",
        "G703 column G total",
        "37600.00",
        "37500.00",
    ),
    (
        "line 5 = J total",  # the demo's old error: J at 10% of stored material too
        with_row(1, retainage=D("750.00")),
        "G702 line 5 (total retainage)",
        "G703 column J total",
        "3625.00",
        "3750.00",
    ),
    (
        "C total = line 3 with change-order lines",
        with_row(
            1,
            is_change_order=True,
            scheduled_value=D("50000.01"),
            balance_to_finish=D("42500.01"),
            percent_complete=D("7500") / D("50000.01") * 100,
        ),
        "G703 column C total (scheduled value, change orders included)",
        "G702 line 3",
        "150000.01",
        "150000.00",
    ),
    (
        "G = D + E + F",
        with_row(0, work_completed_from_previous_application=D("20000.01")),
        "G703 row 1, column G (completed and stored to date)",
        "D + E + F",
        "30000.00",
        "30000.01",
    ),
    (
        "I = C - G",
        with_row(0, balance_to_finish=D("70000.10")),
        "G703 row 1, column I (balance to finish)",
        "C - G",
        "70000.10",
        "70000.00",
    ),
    (
        "H = G / C",
        with_row(0, percent_complete=D("33")),
        "G703 row 1, column H (% complete)",
        "G / C",
        "33.00",
        "30.00",
    ),
    (
        "change orders: additions - deductions = line 2",
        with_summary(previous_change_order_deductions=D("2500.00")),
        "G702 line 2 (net change by change orders)",
        "change-order summary additions - deductions",
        "10000.00",
        "9500.00",
    ),
]


@pytest.mark.parametrize(
    ("sheet", "where", "rule", "shown", "expected"),
    [case[1:] for case in ONE_ERROR_PER_RULE],
    ids=[case[0] for case in ONE_ERROR_PER_RULE],
)
def test_one_error_gives_exactly_its_finding(
    sheet: InvoiceSheet, where: str, rule: str, shown: str, expected: str
) -> None:
    [finding] = check_invoice(sheet)
    assert (finding.where, finding.rule) == (where, rule)
    assert (finding.shown, finding.expected) == (D(shown), D(expected))
    assert finding.difference == D(shown) - D(expected)


def test_a_finding_reads_as_one_line_with_both_amounts_and_the_difference() -> None:
    [finding] = check_invoice(with_summary(current_payment_due=D("13785.00")))
    assert finding.text() == (
        "G702 line 8 (current payment due): $13,785.00 shown, line 6 - line 7 = $13,875.00 "
        "(difference -$90.00)"
    )
    [percent] = check_invoice(with_row(0, percent_complete=D("33")))
    assert percent.text().endswith("33.00% shown, G / C = 30.00% (difference 3.00%)")
    assert tie_out_reason((finding,)) == f"does not tie out: {finding.text()}"


def test_amounts_are_compared_as_printed_to_the_cent() -> None:
    # Half a cent more is printed the same (rounded half up): no finding; a cent is one.
    assert check_invoice(with_summary(current_payment_due=D("13875.004"))) == ()
    [finding] = check_invoice(with_summary(current_payment_due=D("13875.005")))
    assert (finding.shown, finding.expected) == (D("13875.01"), D("13875.00"))


def test_retainage_percentage_rounds_half_up() -> None:
    # 2.5% of D + E 35,000.20 is 875.005: 875.01 half up (875.00 would be half even).
    lines = (row("1", "100000.00", "20000.20", "15000.00", "0.00", "875.01"),)
    sheet = replace(
        BASE,
        lines=lines,
        summary=replace(
            BASE.summary,
            total_completed_and_stored_to_date=D("35000.20"),
            completed_work_retainage_percent=D("2.5"),
            completed_work_retainage_amount=D("875.01"),
            stored_materials_retainage_percent=ZERO,
            stored_materials_retainage_amount=ZERO,
            total_retainage=D("875.01"),
            total_earned_less_retainage=D("34125.19"),
            less_previous_certificates_for_payment=D("20000.00"),
            current_payment_due=D("14125.19"),
            balance_to_finish_including_retainage=D("115874.81"),
        ),
    )
    assert check_invoice(sheet) == ()
    [finding] = check_invoice(
        replace(
            sheet,
            summary=replace(
                sheet.summary,
                completed_work_retainage_amount=D("875.00"),
                stored_materials_retainage_amount=D("0.01"),
            ),
        )
    )
    assert (finding.shown, finding.expected) == (D("875.00"), D("875.01"))


def test_rules_apply_only_where_the_sheet_gives_what_they_need() -> None:
    # No G703 lines: nothing to check G702 against, nor a base for the percentages.
    assert check_invoice(replace(BASE, lines=())) == ()
    # No J on the sheet (every row 0): line 5 is not compared with it.
    no_j = replace(BASE, lines=tuple(replace(line, retainage=ZERO) for line in BASE.lines))
    assert check_invoice(no_j) == ()
    # No change-order summary: line 2 stands alone.
    no_box = with_summary(
        previous_change_order_additions=ZERO, previous_change_order_deductions=ZERO
    )
    assert check_invoice(no_box) == ()
    # C is zero: H prints "—" and is not checked.
    empty_row = row("3", "0.00", "0.00", "0.00", "0.00", "0.00")
    assert (
        check_invoice(replace(BASE, lines=(*BASE.lines, replace(empty_row, percent_complete=D(5)))))
        == ()
    )


def test_several_errors_are_all_reported_in_rule_order() -> None:
    sheet = replace(
        with_summary(current_payment_due=D("1.00"), original_contract_sum=D("1.00")),
        lines=(replace(BASE.lines[0], balance_to_finish=D("1.00")), BASE.lines[1]),
    )
    assert [finding.where for finding in check_invoice(sheet)] == [
        "G702 line 3 (contract sum to date)",
        "G702 line 8 (current payment due)",
        "G703 row 1, column I (balance to finish)",
    ]


def test_a_row_is_named_by_its_item_number_when_it_differs() -> None:
    sheet = with_row(0, item_number="01-100", balance_to_finish=D("1"))
    [finding] = check_invoice(sheet)
    assert finding.where == "G703 row 1 (item 01-100), column I (balance to finish)"


# --- the property ---------------------------------------------------------------------------

CENT = D("0.01")
cents = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n) / 100)
signed_cents = st.integers(min_value=-(10**8), max_value=10**8).map(lambda n: D(n) / 100)
percents = st.sampled_from([ZERO, D("5"), D("10"), D("7.5"), D("2.5"), D("12.125")])


@st.composite
def consistent_sheets(draw: st.DrawFn) -> tuple[InvoiceSheet, list[tuple[str, Any]]]:
    """A sheet whose every covered amount ties out, and the amounts the rules cover: ("summary",
    field) or (row index, field)."""
    count = draw(st.integers(min_value=1, max_value=5))
    lines: list[G703Line] = []
    for index in range(count):
        previous, this_period, stored = draw(cents), draw(cents), draw(cents)
        completed = previous + this_period + stored
        scheduled = completed + draw(cents) if draw(st.booleans()) else draw(cents)
        lines.append(
            G703Line(
                item_number=str(index + 1),
                description_of_work="work",
                scheduled_value=scheduled,
                work_completed_from_previous_application=previous,
                work_completed_this_period=this_period,
                materials_presently_stored=stored,
                total_completed_and_stored_to_date=completed,
                percent_complete=completed / scheduled * 100 if scheduled else ZERO,
                balance_to_finish=scheduled - completed,
                retainage=ZERO,
                is_change_order=draw(st.booleans()) if index else False,
            )
        )
    work = sum((line.work_completed_from_previous_application for line in lines), ZERO)
    work += sum((line.work_completed_this_period for line in lines), ZERO)
    stored_total = sum((line.materials_presently_stored for line in lines), ZERO)
    work_percent, stored_percent = draw(percents), draw(percents)
    work_retainage = (
        (work * work_percent / 100).quantize(CENT, ROUND_HALF_UP) if work_percent else draw(cents)
    )
    stored_retainage = (
        (stored_total * stored_percent / 100).quantize(CENT, ROUND_HALF_UP)
        if stored_percent
        else draw(cents)
    )
    total_retainage = work_retainage + stored_retainage
    has_j = draw(st.booleans())
    if has_j:  # any split of the total over the rows, the last row taking the rest
        shares = [draw(signed_cents) for _ in lines[:-1]]
        shares.append(total_retainage - sum(shares, ZERO))
        lines = [replace(line, retainage=share) for line, share in zip(lines, shares, strict=True)]
    has_box = draw(st.booleans())
    additions = [draw(cents), draw(cents)] if has_box else [ZERO, ZERO]
    deductions = [draw(cents), draw(cents)] if has_box else [ZERO, ZERO]
    net_change = sum(additions, ZERO) - sum(deductions, ZERO) if has_box else draw(signed_cents)
    scheduled_total = sum((line.scheduled_value for line in lines), ZERO)
    has_change_order_lines = any(line.is_change_order for line in lines)
    original = scheduled_total - net_change if has_change_order_lines else draw(cents)
    contract_sum = original + net_change
    completed_total = sum((line.total_completed_and_stored_to_date for line in lines), ZERO)
    earned = completed_total - total_retainage
    previous_certificates = draw(cents)
    summary = G702Summary(
        original_contract_sum=original,
        net_change_by_change_orders=net_change,
        contract_sum_to_date=contract_sum,
        total_completed_and_stored_to_date=completed_total,
        completed_work_retainage_percent=work_percent,
        completed_work_retainage_amount=work_retainage,
        stored_materials_retainage_percent=stored_percent,
        stored_materials_retainage_amount=stored_retainage,
        total_retainage=total_retainage,
        total_earned_less_retainage=earned,
        less_previous_certificates_for_payment=previous_certificates,
        current_payment_due=earned - previous_certificates,
        balance_to_finish_including_retainage=contract_sum - earned,
        previous_change_order_additions=additions[0],
        previous_change_order_deductions=deductions[0],
        new_change_order_additions=additions[1],
        new_change_order_deductions=deductions[1],
    )
    covered: list[tuple[str, Any]] = [
        ("summary", field)
        for field in (
            "original_contract_sum",
            "net_change_by_change_orders",
            "contract_sum_to_date",
            "total_completed_and_stored_to_date",
            "completed_work_retainage_amount",
            "stored_materials_retainage_amount",
            "total_retainage",
            "total_earned_less_retainage",
            "less_previous_certificates_for_payment",
            "current_payment_due",
            "balance_to_finish_including_retainage",
        )
    ]
    if has_box:
        covered += [
            ("summary", field)
            for field in (
                "previous_change_order_additions",
                "previous_change_order_deductions",
                "new_change_order_additions",
                "new_change_order_deductions",
            )
        ]
    for index, line in enumerate(lines):
        fields = [
            "scheduled_value",
            "work_completed_from_previous_application",
            "work_completed_this_period",
            "materials_presently_stored",
            "total_completed_and_stored_to_date",
            "balance_to_finish",
        ]
        if has_j:
            fields.append("retainage")
        if line.scheduled_value:
            fields.append("percent_complete")
        covered += [(index, field) for field in fields]
    sheet = InvoiceSheet("INV", "Approved", None, HEADER, summary, tuple(lines))
    return sheet, covered


def nudged(sheet: InvoiceSheet, where: tuple[str, Any], by: Decimal) -> InvoiceSheet:
    """`sheet` with one amount changed by `by` (a cent, or a hundredth of a percent)."""
    place, field = where
    if place == "summary":
        return replace(
            sheet, summary=replace(sheet.summary, **{field: getattr(sheet.summary, field) + by})
        )
    lines = list(sheet.lines)
    lines[place] = replace(lines[place], **{field: getattr(lines[place], field) + by})
    return replace(sheet, lines=tuple(lines))


@settings(max_examples=300, deadline=None)
@given(consistent_sheets())
def test_consistent_sheets_never_produce_a_finding(
    drawn: tuple[InvoiceSheet, list[tuple[str, Any]]],
) -> None:
    sheet, _ = drawn
    assert check_invoice(sheet) == ()


@settings(max_examples=300, deadline=None)
@given(consistent_sheets(), st.data(), st.sampled_from([CENT, -CENT]))
def test_a_cent_more_or_less_on_any_covered_amount_is_a_finding(
    drawn: tuple[InvoiceSheet, list[tuple[str, Any]]], data: st.DataObject, by: Decimal
) -> None:
    sheet, covered = drawn
    where = data.draw(st.sampled_from(covered))
    findings = check_invoice(nudged(sheet, where, by))
    assert findings, f"changing {where} by {by} went unnoticed"
    assert all(isinstance(finding, TieOutFinding) for finding in findings)
    assert all(abs(finding.difference) >= CENT for finding in findings)
