"""Recording and reading the audit trail (compile requests, access changes, digest runs)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.audit import AuditEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditLine:
    """One audit entry as plain data."""

    at: datetime
    actor: str
    action: str
    project_id: int | None
    outcome: str
    details: dict[str, Any]

    def render(self) -> str:
        """``2026-11-26 09:14:03Z  slack:U1  compile  project 1001  granted  {...}``."""
        project = f"project {self.project_id}" if self.project_id is not None else "-"
        details = json.dumps(self.details, sort_keys=True, default=str) if self.details else ""
        stamp = self.at.strftime("%Y-%m-%d %H:%M:%SZ")
        fields = (stamp, self.actor, self.action, project, self.outcome, details)
        return "  ".join(fields).rstrip()


async def record(
    actor: str, action: str, outcome: str, *, project_id: int | None = None, **details: Any
) -> None:
    """Append an entry. A failure to write the audit is logged, never raised to the caller."""
    try:
        await AuditEntry.create(
            actor=actor, action=action, outcome=outcome, project_id=project_id, details=details
        )
    except Exception:  # the audit must never break the action it records
        log.exception("could not record audit entry %s %s %s", actor, action, outcome)


async def entries(
    *, project_id: int | None = None, since: datetime | None = None, limit: int = 1000
) -> list[AuditLine]:
    """Entries, oldest first, optionally for one project and from a moment on."""
    query = AuditEntry.all()
    if project_id is not None:
        query = query.filter(project_id=project_id)
    if since is not None:
        query = query.filter(at__gte=since)
    rows = await query.order_by("-at", "-id").limit(limit)
    return [
        AuditLine(row.at, row.actor, row.action, row.project_id, row.outcome, row.details or {})
        for row in reversed(rows)
    ]
