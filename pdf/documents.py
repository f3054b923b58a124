"""Plain data the PDF layer consumes and produces.

Everything here is a frozen dataclass of str, int, Decimal, date, datetime and tuples, so it
pickles into a worker process. No ORM, no Slack. Money is always `Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pdf.formatting import format_money, format_percent

ZERO = Decimal("0")


@dataclass(frozen=True)
class G702Header:
    """Header of the application for payment (Procore `summary_text`)."""

    to_general_contractor: str
    project_name: str
    project_number: str
    application_number: str
    period_start: date | None
    period_end: date | None
    subcontractor_name: str
    subcontractor_address: str
    contract_for: str
    contract_date: date | None


@dataclass(frozen=True)
class G702Summary:
    """The numbered lines of the G702 page (Procore `summary`) and the change-order box."""

    original_contract_sum: Decimal
    net_change_by_change_orders: Decimal
    contract_sum_to_date: Decimal
    total_completed_and_stored_to_date: Decimal
    completed_work_retainage_percent: Decimal
    completed_work_retainage_amount: Decimal
    stored_materials_retainage_percent: Decimal
    stored_materials_retainage_amount: Decimal
    total_retainage: Decimal
    total_earned_less_retainage: Decimal
    less_previous_certificates_for_payment: Decimal
    current_payment_due: Decimal
    balance_to_finish_including_retainage: Decimal
    # Change-order summary box: approved in previous months / this month.
    previous_change_order_additions: Decimal = ZERO
    previous_change_order_deductions: Decimal = ZERO
    new_change_order_additions: Decimal = ZERO
    new_change_order_deductions: Decimal = ZERO


@dataclass(frozen=True)
class G703Line:
    """One row of the continuation sheet, columns A to J."""

    item_number: str
    description_of_work: str
    scheduled_value: Decimal
    work_completed_from_previous_application: Decimal
    work_completed_this_period: Decimal
    materials_presently_stored: Decimal
    total_completed_and_stored_to_date: Decimal
    percent_complete: Decimal
    balance_to_finish: Decimal
    retainage: Decimal
    is_change_order: bool = False  # a change order listed as a line of the schedule of values


@dataclass(frozen=True)
class InvoiceSheet:
    """Everything needed to render one default invoice PDF (G702 page + G703 table)."""

    invoice_number: str
    status: str
    billing_date: date | None
    header: G702Header
    summary: G702Summary
    lines: tuple[G703Line, ...]


@dataclass(frozen=True)
class AttachmentSource:
    """An attachment of an invoice as the compiler sees it; `path` is None when the file is gone."""

    filename: str
    content_type: str
    path: str | None


@dataclass(frozen=True)
class TieOutFinding:
    """An amount on an invoice's G702/G703 that is not what the sheet's own figures give.

    `where` names the line or row ("G702 line 8 (current payment due)", "G703 row 2, column
    G"), `rule` what it should equal ("line 6 - line 7"); `shown` and `expected` are both at
    the precision printed (cents, or hundredths of a percent when `is_percent`).
    """

    where: str
    rule: str
    shown: Decimal
    expected: Decimal
    is_percent: bool = False

    @property
    def difference(self) -> Decimal:
        """`shown` minus `expected`."""
        return self.shown - self.expected

    def amount_text(self, amount: Decimal) -> str:
        """`amount` as money, or as a percentage for a percent finding."""
        return format_percent(amount) if self.is_percent else format_money(amount)

    def text(self) -> str:
        """One line: ``"G702 line 8 (current payment due): $1,000.00 shown, line 6 - line 7 =
        $1,090.00 (difference -$90.00)"``."""
        return (
            f"{self.where}: {self.amount_text(self.shown)} shown, {self.rule} = "
            f"{self.amount_text(self.expected)} (difference {self.amount_text(self.difference)})"
        )


@dataclass(frozen=True)
class InvoiceEntry:
    """One invoice of a backup, in final order, with what the cover page lists about it."""

    invoice_id: int
    contract_number: str
    contract_title: str
    vendor_name: str
    application_number: int
    invoice_number: str
    period_label: str
    status_label: str
    current_payment_due: Decimal
    sheet: InvoiceSheet
    signed_pdf_path: str | None
    attachments: tuple[AttachmentSource, ...]
    findings: tuple[TieOutFinding, ...] = ()  # where its numbers do not tie out

    @property
    def bookmark_title(self) -> str:
        """Outline title: contract, vendor and application number."""
        return f"{self.contract_number} {self.vendor_name} · Application #{self.application_number}"


@dataclass(frozen=True)
class CoverNote:
    """A line for the cover's 'not included' section (for example an invoice without a period)."""

    subject: str
    reason: str


@dataclass(frozen=True)
class BackupRequest:
    """What to compile: invoices already in domain order, and where to write the PDF."""

    project_name: str
    project_number: str
    generated_at: datetime
    invoices: tuple[InvoiceEntry, ...]
    output_path: str
    not_included: tuple[CoverNote, ...] = ()
    progress_path: str | None = None  # where to write a one-line progress note as work goes on
    data_note: str | None = None  # e.g. "Procore data as of …" when the source was not reached
    subcontractor_word: str = "Subcontractor"  # the project's name for subcontractors


@dataclass(frozen=True)
class LeftOutAttachment:
    """An attachment that was not merged, and why (e.g. 'not a PDF', 'password-protected')."""

    invoice_id: int
    filename: str
    reason: str


@dataclass(frozen=True)
class InvoicePages:
    """Where one invoice landed in the backup (1-based, inclusive page numbers)."""

    invoice_id: int
    first_page: int
    last_page: int
    used_signed_pdf: bool
    merged_attachments: tuple[str, ...]


@dataclass(frozen=True)
class BackupReport:
    """What `assemble_backup` wrote."""

    output_path: str
    page_count: int
    byte_size: int
    invoices: tuple[InvoicePages, ...]
    left_out: tuple[LeftOutAttachment, ...]
    repaired: tuple[LeftOutAttachment, ...] = ()
