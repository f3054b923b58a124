"""The sweep of what killed compiles and interrupted writes leave on this host's disk.

A process killed in the middle of a compile (SIGKILL, out of memory, host crash) runs no cleanup:
its workspace (a partial PDF of up to a GB, the PDF child's ``.backup-*`` folder, the progress
file) stays, and so do the partial files of its downloads and writes
(`storage.blobs.BlobStore.local_scratch`). `sweep_leftovers` removes them; the bot runs it at
start-up and periodically (`bot.server`), ``invoice-backups purge`` runs it too.

Safety rule (several processes may share the data dir and the database). A workspace
``backups/<backup id>-<random>/`` is removed only when all of these hold:

1. It is quiet: nothing in it (a file or a folder, at any depth) changed for ``quiet_for``
   (`LEFTOVER_QUIET_FOR`, 2 hours: longer than the longest job lease BACKUPS_JOB_LEASE_SECONDS
   allows, 1 hour). A live compile touches its workspace every minute
   (`commands.compile_backups.WORKSPACE_HEARTBEAT_SECONDS`) and its PDF child writes there as
   it goes, so the workspace of a live compile is never quiet, whichever process or host runs it
   (a command-line compile, which runs in no job, included).
2. No backup refers to it (`Backup.file_path`): in the local store the workspace is the
   published backup's folder, which only the retention purge deletes.
3. Its backup (the id the folder's name carries) is gone or finished (failed, nothing to
   compile), or is still marked running while no job that could be running it holds a live
   lease: any running job whose lease has not expired and that was queued before the backup was
   requested (give or take `CLOCK_SKEW`) might be that compile, so while one exists the
   workspace stays. The jobs of a killed process are taken over (when their lease expires, or
   at once on PostgreSQL when its worker's lock is freed) and end; a later sweep removes it.

A folder under ``backups/`` whose name carries no backup id is never touched (the retention
purge deals with it). A partial file goes once quiet (rule 1: a download or write in progress
keeps writing it). A backup still marked running whose workspace was removed is marked failed
("interrupted"), as a compile interrupted cleanly marks it.

Idempotent, and safe from several processes at once (a leftover another sweep removed first is
counted by neither). A leftover that cannot be removed (permissions) does not stop the others: it
is counted in `SweepReport.failures` and tried again by the next sweep. Database errors propagate
(nothing was removed before the rows were read).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commands.compile_backups import INTERRUPTED_WARNING
from storage.blobs import BlobStore, LocalScratch
from storage.jobs import Job, JobStatus
from storage.models import Backup

LEFTOVER_QUIET_FOR = timedelta(hours=2)
CLOCK_SKEW = timedelta(minutes=5)  # between the hosts that queue jobs and those that compile
# Published backups' folders are quiet too: read in batches (SQLite allows 999 parameters).
ROWS_PER_QUERY = 500
RUNNING = "running"  # a backup being compiled (or whose compile was killed)
_WORKSPACE_NAME = re.compile(r"(\d+)-[0-9a-f]+")


@dataclass(frozen=True)
class SweepReport:
    """What a sweep removed, kept and could not remove."""

    workspaces_removed: int = 0
    partial_files_removed: int = 0
    bytes_freed: int = 0
    workspaces_kept: int = 0  # quiet, but a running job may still be compiling them
    backups_interrupted: int = 0  # backups marked failed ("interrupted") for a removed workspace
    failures: int = 0  # leftovers that could not be removed (tried again next time)
    first_failure: str = ""  # one line: the path and the reason

    @property
    def found_anything(self) -> bool:
        """True when the sweep removed, kept or failed to remove anything (worth a log line)."""
        return bool(
            self.workspaces_removed
            or self.partial_files_removed
            or self.workspaces_kept
            or self.failures
        )

    def render(self) -> str:
        """One line for the log and the CLI."""
        text = (
            f"removed {_count(self.workspaces_removed, 'compile workspace')} and "
            f"{_count(self.partial_files_removed, 'partial file')} left by stopped processes "
            f"({self.bytes_freed / 1_000_000:.1f} MB freed, "
            f"{_count(self.backups_interrupted, 'backup')} marked interrupted)"
        )
        if self.workspaces_kept:
            text += f"; kept {self.workspaces_kept} quiet while a job that may own them runs"
        if self.failures:
            text += (
                f"; {self.failures} could not be removed (next sweep tries again): "
                f"{self.first_failure}"
            )
        return text + "."


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


async def sweep_leftovers(
    now: datetime, blobs: BlobStore, *, quiet_for: timedelta = LEFTOVER_QUIET_FOR
) -> SweepReport:
    """Remove the compile workspaces and partial files of ``blobs`` on this host that no live
    process uses (see the module's safety rule); ``now`` is the wall clock (aware)."""
    if quiet_for <= timedelta(0):
        raise ValueError(f"quiet_for must be positive, got {quiet_for}")
    quiet = [s for s in await blobs.local_scratch() if s.last_modified < now - quiet_for]
    workspaces: dict[LocalScratch, int] = {}
    for scratch in quiet:
        backup_id = _backup_id(scratch.backup_folder)
        if backup_id is not None:
            workspaces[scratch] = backup_id
    running_ids, published, compiling = await _owned_workspaces(workspaces, now)
    candidates = [s for s in workspaces if s not in published and s not in compiling]
    candidates += [s for s in quiet if s.backup_folder is None]
    removed: list[LocalScratch] = []
    failures: list[str] = []
    for scratch in candidates:
        try:
            if await blobs.remove_scratch(scratch):
                removed.append(scratch)
        except OSError as error:
            failures.append(f"{scratch.path}: {error.strerror or error}")
    interrupted = [workspaces[s] for s in removed if workspaces.get(s) in running_ids]
    marked = (
        await Backup.filter(id__in=interrupted, status=RUNNING).update(
            status="failed", warnings=[INTERRUPTED_WARNING]
        )
        if interrupted
        else 0
    )
    return SweepReport(
        workspaces_removed=sum(1 for s in removed if s in workspaces),
        partial_files_removed=sum(1 for s in removed if s not in workspaces),
        bytes_freed=sum(s.byte_size for s in removed),
        workspaces_kept=len(compiling),
        backups_interrupted=marked,
        failures=len(failures),
        first_failure=failures[0] if failures else "",
    )


def _backup_id(backup_folder: str | None) -> int | None:
    """The backup id a workspace folder ``backups/<id>-<hex>`` carries; None for anything else."""
    if backup_folder is None:
        return None
    found = _WORKSPACE_NAME.fullmatch(backup_folder.rsplit("/", 1)[-1])
    return int(found[1]) if found else None


async def _owned_workspaces(
    workspaces: dict[LocalScratch, int], now: datetime
) -> tuple[set[int], set[LocalScratch], set[LocalScratch]]:
    """The ids of the backups still marked running, and the workspaces to keep: those a backup
    refers to (published), and those of running backups a job with a live lease may be
    compiling."""
    if not workspaces:
        return set(), set(), set()
    ids = sorted(set(workspaces.values()))
    by_id: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), ROWS_PER_QUERY):
        rows = await Backup.filter(id__in=ids[start : start + ROWS_PER_QUERY]).values(
            "id", "status", "file_path", "requested_at"
        )
        by_id.update((int(row["id"]), row) for row in rows)
    running_ids = {backup_id for backup_id, row in by_id.items() if row["status"] == RUNNING}
    oldest_live_job = await _oldest_live_job(now) if running_ids else None
    published: set[LocalScratch] = set()
    compiling: set[LocalScratch] = set()
    for scratch, backup_id in workspaces.items():
        row = by_id.get(backup_id)
        if row is None:
            continue
        if str(row["file_path"] or "").startswith(f"{scratch.backup_folder}/"):
            published.add(scratch)
        elif (
            backup_id in running_ids
            and oldest_live_job is not None
            and oldest_live_job <= row["requested_at"] + CLOCK_SKEW
        ):
            compiling.add(scratch)
    return running_ids, published, compiling


async def _oldest_live_job(now: datetime) -> datetime | None:
    """When the oldest job now running under a live lease was queued (None: no such job)."""
    return (
        await Job.filter(status=JobStatus.RUNNING, lease_expires_at__gt=now)
        .order_by("created_at")
        .first()
        .values_list("created_at", flat=True)
    )
