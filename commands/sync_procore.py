"""Sync projects from Procore: read each through `sources.procore.read_project`, apply the
snapshot with `commands.apply_snapshot` (the one writer).

Contract:
- `sync_project`: one project. Incremental (only what Procore says changed since the project's
  ``synced_at``) unless ``full`` is asked, the project was never synced from Procore, or its last
  full pass (``full_synced_at``) is older than `FULL_PASS_EVERY`; a full pass deletes what
  Procore no longer has. ``synced_at``/``full_synced_at`` are recorded by the writer.
- A project answering 403 (`ProjectNotReachable`) gets ``unreachable_reason`` (the one line the
  Procore admin acts on); a project never synced gets its row from the projects list so that
  the reason can be shown. Its stored data stays as last synced. Other Procore failures of one
  project (bad data, Procore unavailable for it) end that project's line as failed; the others
  go on. Credentials that do not work (`ProcoreAuthError`) stop the whole sync: every project
  would fail the same way.
- `sync_company`: every project the service account lists, or those named by project number
  (or Procore id). Projects run one after another (the client already runs each project's reads
  concurrently within the rate limit); ``progress`` hears of each finished project.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from commands.apply_snapshot import SnapshotRefused, SnapshotReport, apply_snapshot
from procore import api
from procore.client import ProcoreClient
from procore.errors import ProcoreAuthError, ProcoreError, ProjectNotReachable
from sources.procore import project_record, read_project
from sources.snapshot import SOURCE_PROCORE
from storage.models import Project

FULL_PASS_EVERY = timedelta(days=1)
SYNCED = "synced"
UNREACHABLE = "unreachable"
FAILED = "failed"
NOT_FOUND = "not found"


@dataclass(frozen=True)
class ProjectSyncLine:
    """The outcome of syncing one project (``outcome``: synced, unreachable, failed, not found).

    ``detail``: for a synced project, what changed; otherwise the one-line reason.
    """

    project_id: int | None
    label: str
    outcome: str
    full: bool = False
    detail: str = ""

    def render(self) -> str:
        """One line, e.g. ``Tower (T-1): synced (full): 3 invoices created``."""
        pass_kind = (
            (" (full)" if self.full else " (changes only)") if self.outcome == SYNCED else ""
        )
        return f"{self.label}: {self.outcome}{pass_kind}: {self.detail}"


@dataclass(frozen=True)
class SyncReport:
    """One line per project, in the order they were synced."""

    lines: tuple[ProjectSyncLine, ...]

    @property
    def all_synced(self) -> bool:
        """True when every asked project was synced."""
        return all(line.outcome == SYNCED for line in self.lines)

    def render(self) -> str:
        """One line per project (or a line saying there was none)."""
        if not self.lines:
            return "No Procore project to sync: the service account reaches none."
        return "\n".join(line.render() for line in self.lines)


SyncProgress = Callable[[int, int, ProjectSyncLine], Awaitable[None]]
"""``progress(done, total, line)`` after each project."""


def _label(name: str, number: str, project_id: int | None) -> str:
    if number:
        return f"{name} ({number})"
    return f"{name} (Procore project {project_id})" if project_id is not None else name


def changes_text(report: SnapshotReport) -> str:
    """What applying a snapshot changed, in a few words (``unchanged`` when nothing)."""
    parts: list[str] = []
    for kind, changes in report.changes.items():
        noun = kind.replace("_", " ")
        for verb, count in (
            ("created", changes.created),
            ("updated", changes.updated),
            ("deleted", changes.deleted),
        ):
            if count:
                parts.append(f"{count} {noun} {verb}")
    return ", ".join(parts) if parts else "unchanged"


def needs_full_pass(project: Project | None, now: datetime) -> bool:
    """True when an incremental sync of ``project`` would not do: never synced from Procore,
    or its last full pass is older than `FULL_PASS_EVERY`."""
    if project is None or project.source != SOURCE_PROCORE:
        return True
    if project.synced_at is None or project.full_synced_at is None:
        return True
    return now - project.full_synced_at >= FULL_PASS_EVERY


async def sync_project(
    client: ProcoreClient,
    project_id: int,
    *,
    full: bool = False,
    listed: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> ProjectSyncLine:
    """Sync one project (see the module contract); ``listed`` is its entry of the projects list
    (to create the row of a project that cannot be read). Raises `ProcoreAuthError` only."""
    moment = now or datetime.now(UTC)
    stored = await Project.get_or_none(id=project_id)
    full = full or needs_full_pass(stored, moment)
    since = None if full or stored is None else stored.synced_at
    name = stored.name if stored else str((listed or {}).get("name") or project_id)
    number = stored.project_number if stored else str((listed or {}).get("project_number") or "")
    try:
        snapshot = await read_project(client, project_id, since=since)
        report = await apply_snapshot(snapshot)
    except ProcoreAuthError:
        raise
    except ProjectNotReachable as error:
        await mark_unreachable(client, project_id, error.reason, listed)
        return ProjectSyncLine(
            project_id, _label(name, number, project_id), UNREACHABLE, False, error.reason
        )
    except (ProcoreError, SnapshotRefused) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        return ProjectSyncLine(project_id, _label(name, number, project_id), FAILED, full, reason)
    return ProjectSyncLine(
        project_id,
        _label(report.project_name, report.project_number, project_id),
        SYNCED,
        full,
        changes_text(report),
    )


async def mark_unreachable(
    client: ProcoreClient, project_id: int, reason: str, listed: dict[str, Any] | None
) -> None:
    """Record why ``project_id`` cannot be read; create its row from ``listed`` (its entry of
    the projects list) when it was never synced."""
    updated = await Project.filter(id=project_id).update(unreachable_reason=reason)
    if updated or listed is None:
        return
    try:
        record = project_record(listed)
        company_id, company_name = record.company_id, record.company_name
        name, number = record.name, record.project_number
    except ProcoreError:
        company_id, company_name = client.company_id, ""
        name = str(listed.get("name") or f"Procore project {project_id}")
        number = str(listed.get("project_number") or "")
    await Project.create(
        id=project_id,
        name=name,
        project_number=number,
        company_id=company_id,
        company_name=company_name,
        source=SOURCE_PROCORE,
        unreachable_reason=reason,
    )


async def sync_company(
    client: ProcoreClient,
    *,
    project_numbers: Iterable[str] = (),
    full: bool = False,
    progress: SyncProgress | None = None,
) -> SyncReport:
    """Sync every project the service account lists, or those whose project number (or
    Procore id) is in ``project_numbers``. Raises `ProcoreAuthError` when the credentials fail,
    `ProcoreError` when the projects list itself cannot be read."""
    listed = [entry for entry in await api.list_projects(client) if isinstance(entry, dict)]
    wanted = [str(number).strip() for number in project_numbers if str(number).strip()]
    chosen: list[dict[str, Any]] = []
    lines: list[ProjectSyncLine] = []
    if wanted:
        for number in dict.fromkeys(wanted):
            match = next(
                (
                    entry
                    for entry in listed
                    if str(entry.get("project_number") or "") == number
                    or str(entry.get("id")) == number
                ),
                None,
            )
            if match is None:
                lines.append(
                    ProjectSyncLine(
                        None,
                        number,
                        NOT_FOUND,
                        detail="no project with this number among those the service account "
                        "lists (run `invoice-backups procore check`)",
                    )
                )
            elif match not in chosen:
                chosen.append(match)
    else:
        chosen = listed
    total = len(chosen) + len(lines)
    done = len(lines)
    for line in lines:
        if progress is not None:
            await progress(done, total, line)
    for entry in chosen:
        project_id = entry.get("id")
        if not isinstance(project_id, int) or isinstance(project_id, bool):
            continue
        line = await sync_project(client, project_id, full=full, listed=entry)
        lines.append(line)
        done += 1
        if progress is not None:
            await progress(done, total, line)
    return SyncReport(tuple(lines))
