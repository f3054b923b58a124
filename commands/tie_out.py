"""Numbers that tie out: the arithmetic of one invoice's G702 and G703, checked as printed.

`check_invoice(sheet)` takes the `InvoiceSheet` that is rendered and returns one
`TieOutFinding` per amount that is not what the sheet's own figures give; no finding means the
invoice ties out. Pure: no ORM, no Slack, no I/O.

Every amount is first taken at the precision printed (`shown`: cents, rounded half up as
`pdf.formatting.format_money` prints it), then the arithmetic is exact `Decimal`; a difference of
one cent or more is a finding. The rules:

- G702 lines: 3 = 1 + 2; 5 total = 5a + 5b; 6 = 4 - 5 total; 8 = 6 - 7; 9 = 3 - 6.
- Retainage 5a = its percentage of columns D + E of the G703, 5b = its percentage of column F,
  where the percentage is given (not zero: a sheet without one reads 0%) and the sheet has G703
  lines. Rounded to the cent **half up** (`ROUND_HALF_UP`), as Procore rounds: it stores money
  with two decimals and rounds with Ruby's BigDecimal, whose default mode is half up; it is also
  the accountants' rule and the one `format_money` prints with, so the check and the printed
  figures agree. (Procore's API does not document its rounding; half up is our reading.)
- G702 against G703, where the sheet has G703 lines: line 4 = column G total; line 5 total =
  column J total where the sheet has a J (some row's J is not zero); column C total = line 3
  where change orders are listed as lines (some row `is_change_order`).
- Each G703 row: G = D + E + F; I = C - G; H = G / C (in %, to the hundredth printed; not
  checked where C is zero, which prints "—").
- Change-order summary, where the sheet gives one (some amount not zero): its net change,
  additions minus deductions, = line 2.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pdf.documents import ZERO, G702Summary, G703Line, InvoiceSheet, TieOutFinding

CENT = Decimal("0.01")
HUNDRED = Decimal("100")

LINE_NAMES = {
    "original_contract_sum": "G702 line 1 (original contract sum)",
    "net_change_by_change_orders": "G702 line 2 (net change by change orders)",
    "contract_sum_to_date": "G702 line 3 (contract sum to date)",
    "total_completed_and_stored_to_date": "G702 line 4 (total completed and stored to date)",
    "completed_work_retainage_amount": "G702 line 5a (retainage on completed work)",
    "stored_materials_retainage_amount": "G702 line 5b (retainage on stored material)",
    "total_retainage": "G702 line 5 (total retainage)",
    "total_earned_less_retainage": "G702 line 6 (total earned less retainage)",
    "current_payment_due": "G702 line 8 (current payment due)",
    "balance_to_finish_including_retainage": "G702 line 9 (balance to finish incl. retainage)",
}


def shown(amount: Decimal) -> Decimal:
    """`amount` at the precision printed: to the cent (or hundredth of a percent), half up."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _compare(
    where: str, rule: str, amount: Decimal, expected: Decimal, *, is_percent: bool = False
) -> list[TieOutFinding]:
    """A finding when `amount` and `expected`, both at the precision printed, differ."""
    amount, expected = shown(amount), shown(expected)
    if amount == expected:
        return []
    return [TieOutFinding(where, rule, amount, expected, is_percent)]


def check_invoice(sheet: InvoiceSheet) -> tuple[TieOutFinding, ...]:
    """Every amount of `sheet` that does not tie out, in the order of the rules above."""
    findings = _g702_lines(sheet.summary)
    findings += _retainage_percentages(sheet)
    findings += _g702_against_g703(sheet)
    for index, line in enumerate(sheet.lines, start=1):
        findings += _g703_row(index, line)
    findings += _change_order_summary(sheet.summary)
    return tuple(findings)


def _g702_lines(summary: G702Summary) -> list[TieOutFinding]:
    line = {field: shown(getattr(summary, field)) for field in LINE_NAMES}
    line["less_previous_certificates_for_payment"] = shown(
        summary.less_previous_certificates_for_payment
    )
    checks = (
        (
            "contract_sum_to_date",
            "line 1 + line 2",
            line["original_contract_sum"] + line["net_change_by_change_orders"],
        ),
        (
            "total_retainage",
            "line 5a + line 5b",
            line["completed_work_retainage_amount"] + line["stored_materials_retainage_amount"],
        ),
        (
            "total_earned_less_retainage",
            "line 4 - line 5 total",
            line["total_completed_and_stored_to_date"] - line["total_retainage"],
        ),
        (
            "current_payment_due",
            "line 6 - line 7",
            line["total_earned_less_retainage"] - line["less_previous_certificates_for_payment"],
        ),
        (
            "balance_to_finish_including_retainage",
            "line 3 - line 6",
            line["contract_sum_to_date"] - line["total_earned_less_retainage"],
        ),
    )
    findings: list[TieOutFinding] = []
    for field, rule, expected in checks:
        findings += _compare(LINE_NAMES[field], rule, line[field], expected)
    return findings


def _column_total(lines: tuple[G703Line, ...], field: str) -> Decimal:
    return sum((shown(getattr(line, field)) for line in lines), ZERO)


def _retainage_percentages(sheet: InvoiceSheet) -> list[TieOutFinding]:
    summary, lines = sheet.summary, sheet.lines
    if not lines:
        return []
    completed_work = _column_total(lines, "work_completed_from_previous_application")
    completed_work += _column_total(lines, "work_completed_this_period")
    stored = _column_total(lines, "materials_presently_stored")
    checks = (
        (
            "completed_work_retainage_amount",
            summary.completed_work_retainage_percent,
            completed_work,
            "columns D + E",
        ),
        (
            "stored_materials_retainage_amount",
            summary.stored_materials_retainage_percent,
            stored,
            "column F",
        ),
    )
    findings: list[TieOutFinding] = []
    for field, percent, base, base_name in checks:
        if percent == ZERO:
            continue
        rule = f"{percent.normalize():f}% of G703 {base_name} ({shown(base):,.2f})"
        findings += _compare(
            LINE_NAMES[field], rule, getattr(summary, field), percent * base / HUNDRED
        )
    return findings


def _g702_against_g703(sheet: InvoiceSheet) -> list[TieOutFinding]:
    summary, lines = sheet.summary, sheet.lines
    if not lines:
        return []
    findings = _compare(
        LINE_NAMES["total_completed_and_stored_to_date"],
        "G703 column G total",
        summary.total_completed_and_stored_to_date,
        _column_total(lines, "total_completed_and_stored_to_date"),
    )
    if any(shown(line.retainage) != ZERO for line in lines):
        findings += _compare(
            LINE_NAMES["total_retainage"],
            "G703 column J total",
            summary.total_retainage,
            _column_total(lines, "retainage"),
        )
    if any(line.is_change_order for line in lines):
        findings += _compare(
            "G703 column C total (scheduled value, change orders included)",
            "G702 line 3",
            _column_total(lines, "scheduled_value"),
            summary.contract_sum_to_date,
        )
    return findings


def row_name(index: int, line: G703Line) -> str:
    """``"G703 row 2"``, with the item number when it is not the row number."""
    if line.item_number in ("", str(index)):
        return f"G703 row {index}"
    return f"G703 row {index} (item {line.item_number})"


def _g703_row(index: int, line: G703Line) -> list[TieOutFinding]:
    name = row_name(index, line)
    scheduled = shown(line.scheduled_value)
    completed = shown(line.total_completed_and_stored_to_date)
    findings = _compare(
        f"{name}, column G (completed and stored to date)",
        "D + E + F",
        completed,
        shown(line.work_completed_from_previous_application)
        + shown(line.work_completed_this_period)
        + shown(line.materials_presently_stored),
    )
    findings += _compare(
        f"{name}, column I (balance to finish)",
        "C - G",
        line.balance_to_finish,
        scheduled - completed,
    )
    if scheduled != ZERO:
        findings += _compare(
            f"{name}, column H (% complete)",
            "G / C",
            line.percent_complete,
            completed / scheduled * HUNDRED,
            is_percent=True,
        )
    return findings


def _change_order_summary(summary: G702Summary) -> list[TieOutFinding]:
    additions = shown(summary.previous_change_order_additions) + shown(
        summary.new_change_order_additions
    )
    deductions = shown(summary.previous_change_order_deductions) + shown(
        summary.new_change_order_deductions
    )
    if additions == ZERO and deductions == ZERO:
        return []
    return _compare(
        LINE_NAMES["net_change_by_change_orders"],
        "change-order summary additions - deductions",
        summary.net_change_by_change_orders,
        additions - deductions,
    )


def tie_out_reason(findings: tuple[TieOutFinding, ...]) -> str:
    """Why an invoice is left out when findings stop it: ``"does not tie out: …; …"``."""
    return "does not tie out: " + "; ".join(finding.text() for finding in findings)
