"""What a compile stopped in the middle leaves, written as the killed process left it: for the
tests of the leftover sweep (`commands.sweep_leftovers`)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from commands.sweep_leftovers import LEFTOVER_QUIET_FOR
from storage.jobs import COMPILE_BACKUP, Job, JobStatus
from storage.models import Backup

PARTIAL_PDF = b"%PDF-1.7\n" + b"x" * 100_000  # a PDF cut short by the kill
KILLED_AGO = LEFTOVER_QUIET_FOR + timedelta(hours=1)
SHA = "ab" * 32


def age(path: Path, ago: timedelta) -> None:
    """Set the modification time of ``path`` and of everything in it to ``ago`` before now."""
    stamp = (datetime.now(UTC) - ago).timestamp()
    for entry in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(entry, (stamp, stamp), follow_symlinks=False)


async def compile_job(
    lease_expires_in: timedelta, queued_ago: timedelta, *, owner: str = "host-a:4242:deadbeef"
) -> Job:
    """A compile job as its worker ``owner`` holds it: running, its lease ending
    ``lease_expires_in`` from now (negative: expired, its owner gone)."""
    now = datetime.now(UTC)
    job = await Job.create(
        idempotency_key=f"compile:{uuid.uuid4().hex}",
        kind=COMPILE_BACKUP,
        status=JobStatus.RUNNING,
        lease_owner=owner,
        lease_expires_at=now + lease_expires_in,
        attempts=1,
    )
    await Job.filter(id=job.id).update(created_at=now - queued_ago)
    return job


async def compile_in_progress(
    workspaces: Path, project_id: int, ago: timedelta, *, status: str = "running"
) -> tuple[Backup, Path]:
    """The state a compile leaves when stopped ``ago`` into its PDF work: its backup row (running)
    and its workspace: the PDF child's scratch folder with a partial PDF, the progress file and
    its partial, none changed since."""
    backup = await Backup.create(
        project_id=project_id,
        requested_by="U_PM",
        requested_at=datetime.now(UTC) - ago,
        invoice_ids=[9001],
        excluded=[],
        file_name="",
        file_path="",
        warnings=[],
        status=status,
    )
    workspace = workspaces / "backups" / f"{backup.id}-{uuid.uuid4().hex[:8]}"
    scratch = workspace / ".backup-k3j2h1"
    scratch.mkdir(parents=True)
    (scratch / "backup.pdf").write_bytes(PARTIAL_PDF)
    (workspace / "progress.txt").write_text("invoice 2 of 3: SC-010 Polar Air")
    (workspace / "progress.txt.partial").write_text("invoice 3 of 3")
    age(workspace, ago)
    return backup, workspace


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
