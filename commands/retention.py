"""Retention of compiled backups and collection of unused blobs, in the object store.

Contract of `purge_expired_backups`:
- A backup requested before ``now - retention_days`` loses its PDF: every object under its
  folder (``backups/<id>-…/``) is deleted from the store and `Backup.file_path` cleared; the row
  stays (the audit trail and the Home tab still list it).
- Folders under ``backups/`` that no backup refers to (a compile that crashed) are deleted once
  every object in them is older than the retention.
- Attachment blobs (``blobs/``) that no `Attachment` or `Invoice` row refers to are collected,
  but only once older than ``blob_grace``. An import stores its blobs before it writes the rows
  that refer to them, and re-writes a blob it finds stored when that blob is older than half of
  ``blob_grace`` (`storage.blobs.BlobStore.put_file`): so between an import's store and its rows
  there is at least half the grace (12 hours by default) in which no purge collects the blob.
  The purge lists the store *before* it reads the references, so a row written after the read
  refers to a blob that was young at the listing.
- Nothing outside ``backups/`` and ``blobs/`` is deleted, whatever a row says.
- Safe to run from several processes at once and to run again (idempotent).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.blobs import BACKUPS_PREFIX, BLOB_GRACE, BLOBS_PREFIX, BlobStore, sha256_of_key
from storage.models import Attachment, Backup, Invoice


@dataclass(frozen=True)
class PurgeReport:
    """What a purge did."""

    cutoff: datetime
    backups_cleared: int  # rows whose file_path was cleared
    files_deleted: int
    bytes_freed: int
    already_gone: int  # rows whose PDF had already disappeared
    orphan_folders: int  # folders no backup referred to
    blobs_collected: int = 0  # attachment blobs no row referred to

    def render(self) -> str:
        """One line for the CLI and the log."""
        return (
            f"Backups requested before {self.cutoff:%Y-%m-%d %H:%M %Z}: "
            f"{self.backups_cleared} expired ({self.already_gone} of them already without a "
            f"file); {self.orphan_folders} unreferenced folders; {self.blobs_collected} unused "
            f"blobs; {self.files_deleted} files deleted, {self.bytes_freed / 1_000_000:.1f} MB "
            "freed."
        )


async def purge_expired_backups(
    now: datetime,
    retention_days: int,
    blobs: BlobStore,
    *,
    blob_grace: timedelta = BLOB_GRACE,
) -> PurgeReport:
    """Delete old PDFs and unused blobs from ``blobs`` (see the module contract)."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    stored_backups = _by_folder(await blobs.list_objects(BACKUPS_PREFIX))
    expired = await Backup.filter(requested_at__lt=cutoff, file_path__not_isnull=True).exclude(
        file_path=""
    )
    files = bytes_freed = gone = 0
    for backup in expired:
        folder = _backup_folder(str(backup.file_path))
        objects = stored_backups.pop(folder, []) if folder is not None else []
        for stored in objects:
            await blobs.delete(stored.key)
        files += len(objects)
        bytes_freed += sum(stored.size for stored in objects)
        if not objects:
            gone += 1
        await Backup.filter(id=backup.id).update(file_path=None)
    referenced = await _referenced_folders()
    orphans = [
        objects
        for folder, objects in stored_backups.items()
        if folder not in referenced and max(o.last_modified for o in objects) < cutoff
    ]
    for objects in orphans:
        for stored in objects:
            await blobs.delete(stored.key)
        files += len(objects)
        bytes_freed += sum(stored.size for stored in objects)
    collected = await _collect_blobs(blobs, now - blob_grace)
    return PurgeReport(
        cutoff,
        len(expired),
        files + len(collected),
        bytes_freed + sum(stored.size for stored in collected),
        gone,
        len(orphans),
        len(collected),
    )


async def _collect_blobs(blobs: BlobStore, written_before: datetime) -> list:
    """Delete the blobs no row refers to, written before ``written_before``; return them."""
    candidates = [
        stored
        for stored in await blobs.list_objects(BLOBS_PREFIX)
        if sha256_of_key(stored.key) is not None and stored.last_modified < written_before
    ]
    if not candidates:
        return []
    referenced = set(await Attachment.all().values_list("sha256", flat=True))
    referenced.update(
        await Invoice.filter(signed_pdf_sha256__not_isnull=True).values_list(
            "signed_pdf_sha256", flat=True
        )
    )
    unused = [stored for stored in candidates if sha256_of_key(stored.key) not in referenced]
    for stored in unused:
        await blobs.delete(stored.key)
    return unused


def _by_folder(objects: list) -> dict[str, list]:
    folders: dict[str, list] = defaultdict(list)
    for stored in objects:
        folder = _backup_folder(stored.key)
        if folder is not None:
            folders[folder].append(stored)
    return dict(folders)


def _backup_folder(key: str) -> str | None:
    """``backups/<folder>`` for a key inside a backup folder, None for any other key."""
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != BACKUPS_PREFIX or any(p in ("", ".", "..") for p in parts):
        return None
    return f"{parts[0]}/{parts[1]}"


async def _referenced_folders() -> set[str]:
    paths = (
        await Backup.filter(file_path__not_isnull=True)
        .exclude(file_path="")
        .values_list("file_path", flat=True)
    )
    folders = (_backup_folder(str(path)) for path in paths)
    return {folder for folder in folders if folder is not None}
