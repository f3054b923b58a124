"""Retention of compiled backups: PDFs are kept ``retention_days``, then deleted.

Contract of `purge_expired_backups`:
- A backup requested before ``now - retention_days`` loses its PDF: the folder the compile wrote
  it in (``<data_dir>/backups/<id>-…/``) is deleted and `Backup.file_path` cleared; the row
  stays (the audit trail and the Home tab still list it).
- Folders under ``<data_dir>/backups/`` that no backup refers to (a compile that crashed) are
  deleted once everything in them is older than the retention.
- Attachment blobs (``<data_dir>/blobs/``) are never touched; nothing outside
  ``<data_dir>/backups/`` is deleted, whatever a row says.
- Safe to run from several processes at once and to run again (idempotent).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from storage.models import Backup

BACKUPS_FOLDER = "backups"


@dataclass(frozen=True)
class PurgeReport:
    """What a purge did."""

    cutoff: datetime
    backups_cleared: int  # rows whose file_path was cleared
    files_deleted: int
    bytes_freed: int
    already_gone: int  # rows whose PDF had already disappeared
    orphan_folders: int  # folders no backup referred to

    def render(self) -> str:
        """One line for the CLI and the log."""
        return (
            f"Backups requested before {self.cutoff:%Y-%m-%d %H:%M %Z}: "
            f"{self.backups_cleared} expired ({self.already_gone} of them already without a "
            f"file); {self.orphan_folders} unreferenced folders; {self.files_deleted} files "
            f"deleted, {self.bytes_freed / 1_000_000:.1f} MB freed."
        )


async def purge_expired_backups(now: datetime, retention_days: int, data_dir: Path) -> PurgeReport:
    """Delete the PDFs of backups older than ``retention_days`` (see the module contract)."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    root = (data_dir / BACKUPS_FOLDER).resolve()
    expired = await Backup.filter(requested_at__lt=cutoff, file_path__not_isnull=True).exclude(
        file_path=""
    )
    files = bytes_freed = gone = 0
    for backup in expired:
        folder = _backup_folder(root, data_dir / str(backup.file_path))
        deleted, size = (0, 0) if folder is None else await asyncio.to_thread(_delete_tree, folder)
        files += deleted
        bytes_freed += size
        if deleted == 0:
            gone += 1
        await Backup.filter(id=backup.id).update(file_path=None)
    referenced = await _referenced_folders(root, data_dir)
    orphans = await asyncio.to_thread(_orphan_folders, root, referenced, cutoff.timestamp())
    for folder in orphans:
        deleted, size = await asyncio.to_thread(_delete_tree, folder)
        files += deleted
        bytes_freed += size
    return PurgeReport(cutoff, len(expired), files, bytes_freed, gone, len(orphans))


def _backup_folder(root: Path, pdf_path: Path) -> Path | None:
    """The folder under ``root`` holding ``pdf_path`` (its first level), or None when the path
    leads elsewhere."""
    resolved = pdf_path.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        return None
    return root / resolved.relative_to(root).parts[0]


async def _referenced_folders(root: Path, data_dir: Path) -> set[Path]:
    paths = (
        await Backup.filter(file_path__not_isnull=True)
        .exclude(file_path="")
        .values_list("file_path", flat=True)
    )
    folders = (_backup_folder(root, data_dir / str(path)) for path in paths)
    return {folder for folder in folders if folder is not None}


def _orphan_folders(root: Path, referenced: set[Path], cutoff: float) -> list[Path]:
    if not root.is_dir():
        return []
    return [
        folder
        for folder in root.iterdir()
        if folder.is_dir() and folder not in referenced and _newest_mtime(folder) < cutoff
    ]


def _newest_mtime(folder: Path) -> float:
    """The latest modification time in ``folder``; infinity when it changes under our feet (it
    is in use, or another process is deleting it)."""
    try:
        return max([folder.stat().st_mtime, *(e.stat().st_mtime for e in folder.rglob("*"))])
    except FileNotFoundError:
        return math.inf


def _delete_tree(folder: Path) -> tuple[int, int]:
    """Delete ``folder``; return (files deleted, bytes freed) as far as this process saw."""
    files = size = 0
    for entry in folder.rglob("*") if folder.is_dir() else ():
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file():
                size += entry.stat().st_size
                files += 1
    shutil.rmtree(folder, ignore_errors=True)
    return files, size
