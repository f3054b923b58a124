"""`BackupOutcome`: what a compile produced, as plain JSON-able data.

The worker stores it on the job (``Job.result``) right after compiling, so a resumed job writes
its final reply without compiling again; the message builders read only this.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from commands.compile_backups import CompileResult


@dataclass(frozen=True)
class LeftOutAttachment:
    """An attachment that was not merged into the PDF, and why."""

    invoice: str
    filename: str
    reason: str


@dataclass(frozen=True)
class LeftOutInvoice:
    """An invoice left out because its billing period does not exist."""

    invoice: str
    period_id: int


@dataclass(frozen=True)
class BackupOutcome:
    """The facts of one compile: enough for the thread reply and the parent message."""

    status: str  # "succeeded" | "nothing_to_compile"
    backup_id: int
    project_name: str
    file_name: str | None
    invoice_count: int
    page_count: int
    byte_size: int
    missing_periods: tuple[LeftOutInvoice, ...]
    left_out_attachments: tuple[LeftOutAttachment, ...]
    unavailable_count: int
    fix_hint: str

    @property
    def has_file(self) -> bool:
        """True when a PDF was produced (and so is to be uploaded)."""
        return self.status == "succeeded" and self.file_name is not None

    @classmethod
    def from_result(cls, result: CompileResult) -> BackupOutcome:
        """Copy the facts out of the use case's result."""
        return cls(
            status=result.status,
            backup_id=result.backup_id,
            project_name=result.project_name,
            file_name=result.file_name,
            invoice_count=result.invoice_count,
            page_count=result.page_count,
            byte_size=result.byte_size,
            missing_periods=tuple(
                LeftOutInvoice(missing.invoice_label, missing.period_id)
                for missing in result.missing_periods
            ),
            left_out_attachments=tuple(
                LeftOutAttachment(invoice, filename, reason)
                for invoice, filename, reason in result.left_out_attachments
            ),
            unavailable_count=int(getattr(result, "unavailable_count", 0) or 0),
            fix_hint=result.fix_hint(),
        )

    def to_json(self) -> dict[str, Any]:
        """A dict of JSON types (for ``Job.result``)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackupOutcome:
        """Inverse of `to_json`."""
        return cls(
            status=str(data["status"]),
            backup_id=int(data["backup_id"]),
            project_name=str(data["project_name"]),
            file_name=data.get("file_name"),
            invoice_count=int(data["invoice_count"]),
            page_count=int(data["page_count"]),
            byte_size=int(data["byte_size"]),
            missing_periods=tuple(LeftOutInvoice(**item) for item in data["missing_periods"]),
            left_out_attachments=tuple(
                LeftOutAttachment(**item) for item in data["left_out_attachments"]
            ),
            unavailable_count=int(data.get("unavailable_count", 0)),
            fix_hint=str(data.get("fix_hint", "")),
        )
