"""The retention purge on SQLite and PostgreSQL: old PDFs go, recent ones and blobs stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from demo_requesters import ADMIN
from local_compile import compile_backup

from commands.import_bundle import import_bundle
from commands.retention import purge_expired_backups
from storage.blobs import BLOB_GRACE, BlobStore, LocalBlobStore, blob_key
from storage.models import Backup

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def compiled_backup(project_id: int, requested_at: datetime) -> Backup:
    result = await compile_backup(ADMIN, project_id, [9001], now=requested_at)
    assert result.pdf_path is not None and result.pdf_path.is_file()
    return await Backup.get(id=result.backup_id)


def blob_files(data_dir: Path) -> set[Path]:
    return {path for path in (data_dir / "blobs").rglob("*") if path.is_file()}


def age(path: Path, days: float) -> None:
    """Set the modification time of ``path`` and everything in it to ``days`` before NOW."""
    stamp = (NOW - timedelta(days=days)).timestamp()
    for entry in [path, *path.rglob("*")]:
        os.utime(entry, (stamp, stamp))


async def test_expired_pdfs_are_deleted_and_recent_ones_kept(
    demo_project: int, data_dir: Path
) -> None:
    old = await compiled_backup(demo_project, NOW - timedelta(days=31))
    recent = await compiled_backup(demo_project, NOW - timedelta(days=29))
    blobs_before = blob_files(data_dir)
    old_pdf = data_dir / str(old.file_path)

    report = await purge_expired_backups(NOW, 30, LocalBlobStore(data_dir))

    assert not old_pdf.exists() and not old_pdf.parent.exists()
    assert (data_dir / str(recent.file_path)).is_file()
    assert (await Backup.get(id=old.id)).file_path is None
    assert (await Backup.get(id=recent.id)).file_path == recent.file_path
    assert blob_files(data_dir) == blobs_before  # attachment blobs are never touched
    assert report.backups_cleared == 1 and report.files_deleted >= 1 and report.bytes_freed > 0
    assert "1 expired" in report.render()

    again = await purge_expired_backups(NOW, 30, LocalBlobStore(data_dir))
    assert (again.backups_cleared, again.files_deleted) == (0, 0)


async def test_unreferenced_folders_go_once_old_and_paths_outside_are_never_deleted(
    demo_project: int, data_dir: Path, tmp_path: Path
) -> None:
    crashed = data_dir / "backups" / "999-deadbeef"
    crashed.mkdir(parents=True)
    (crashed / "progress.txt").write_text("rendering 1/3")
    age(crashed, 40)
    fresh = data_dir / "backups" / "1000-cafebabe"
    fresh.mkdir()
    (fresh / "partial.pdf").write_bytes(b"%PDF-")
    outside = tmp_path / "elsewhere.pdf"
    outside.write_bytes(b"%PDF- not ours")
    stray = await compiled_backup(demo_project, NOW - timedelta(days=90))
    await Backup.filter(id=stray.id).update(file_path=str(Path("..") / outside.name))
    blobs_before = blob_files(data_dir)

    report = await purge_expired_backups(NOW, 30, LocalBlobStore(data_dir))

    assert not crashed.exists() and fresh.exists()
    assert outside.exists()  # a row pointing outside backups/ deletes nothing
    assert (await Backup.get(id=stray.id)).file_path is None
    assert report.orphan_folders >= 1 and report.already_gone == 1
    assert blob_files(data_dir) == blobs_before


async def test_a_retention_under_one_day_is_refused(database: str, data_dir: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await purge_expired_backups(NOW, 0, LocalBlobStore(data_dir))


async def test_unused_blobs_are_collected_once_past_the_grace_and_used_ones_stay(
    database: str, blob_store: BlobStore, demo_bundle: Path, tmp_path: Path
) -> None:
    await import_bundle(demo_bundle, blob_store)
    used = {o.key for o in await blob_store.list_objects("blobs")}
    unused = blob_key(await blob_store.put_bytes(b"a scan no invoice refers to any more"))
    now = datetime.now(UTC)

    young = await purge_expired_backups(now, 30, blob_store)
    assert young.blobs_collected == 0  # written just now: inside the grace
    assert unused in {o.key for o in await blob_store.list_objects("blobs")}

    later = await purge_expired_backups(now + BLOB_GRACE + timedelta(minutes=1), 30, blob_store)
    assert later.blobs_collected == 1 and "1 unused blobs" in later.render()
    assert {o.key for o in await blob_store.list_objects("blobs")} == used


async def test_an_import_refreshes_an_old_blob_so_a_purge_before_its_rows_spares_it(
    database: str, data_dir: Path, tmp_path: Path
) -> None:
    """The race the grace period covers: a blob no row refers to yet (its import has stored it
    and not yet written its rows) is not collected, even when the same bytes were stored long
    ago by an import whose rows are gone since."""
    blobs = LocalBlobStore(data_dir)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(b"%PDF- re-sent by a new import")
    sha256 = await blobs.put_file(scan)
    long_ago = (datetime.now(UTC) - 10 * BLOB_GRACE).timestamp()
    os.utime(blobs.path_for(sha256), (long_ago, long_ago))

    assert await blobs.put_file(scan) == sha256  # the import about to refer to it
    report = await purge_expired_backups(datetime.now(UTC), 30, blobs)

    assert report.blobs_collected == 0 and blobs.path_for(sha256).is_file()
