"""Fresh at compile time: the optional collaborator `compile_backup` asks, right before it
compiles, to bring the selected invoices up to date from the live source.

`commands.compile_backups` knows only this protocol, so it stays source-agnostic; the Procore
implementation is `commands.procore_freshness.ProcoreFreshness`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class Freshness:
    """The outcome of a refresh. ``stale_as_of`` is None when the data is current (re-read
    now, or the project has no live source); otherwise the time of the last sync the compile
    uses instead (the source could not be reached), with ``reason`` in one line."""

    stale_as_of: datetime | None = None
    reason: str = ""
    source: str = "Procore"  # names the source in "Procore data as of <time>"
    refreshed: int = 0  # invoices whose detail was re-read
    downloaded: int = 0  # files fetched into the blob store
    # Files that could not be fetched for a reason worth telling (too large): attachment id →
    # reason, and invoice id → reason for a signed PDF. The compile names the reason instead of
    # "not downloaded yet".
    attachment_problems: Mapping[int, str] = field(default_factory=dict)
    signed_pdf_problems: Mapping[int, str] = field(default_factory=dict)


class InvoiceFreshness(Protocol):
    """Refresh some invoices of a project from their source before a compile."""

    async def refresh(self, project_id: int, invoice_ids: Sequence[int]) -> Freshness:
        """Re-read ``invoice_ids`` (ids of other projects are ignored) and write what changed;
        never raises for the source being unreachable (says so in the answer instead)."""
        ...
