"""The sweep of killed compiles' leftovers, on SQLite and PostgreSQL: a workspace left by a killed
compile goes (and its backup is marked interrupted); the workspace of a compile a live job may be
running, young files, published backups and folders that are not workspaces stay."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.exceptions import ConfigurationError

from commands import sweep_leftovers as sweep_leftovers_module
from commands.compile_backups import INTERRUPTED_WARNING
from commands.sweep_leftovers import LEFTOVER_QUIET_FOR, sweep_leftovers
from storage.blobs import LocalBlobStore, S3BlobStore, blob_key
from storage.db import close_database
from storage.jobs import Job
from storage.models import Backup, Project
from tests.leftovers import (
    KILLED_AGO,
    PARTIAL_PDF,
    SHA,
    age,
    compile_in_progress,
    compile_job,
    size_of,
)


@pytest.fixture
async def project(database: str) -> int:
    created = await Project.create(
        id=562949953421312, name="Riverside", company_id=1, company_name="N"
    )
    return created.id


async def test_a_killed_compiles_workspace_goes_and_its_backup_says_interrupted(
    project: int, data_dir: Path
) -> None:
    await compile_job(lease_expires_in=-KILLED_AGO, queued_ago=KILLED_AGO + timedelta(minutes=1))
    backup, workspace = await compile_in_progress(data_dir, project, KILLED_AGO)
    expected_bytes = size_of(workspace)
    store = LocalBlobStore(data_dir)

    report = await sweep_leftovers(datetime.now(UTC), store)

    assert not workspace.exists()
    assert (report.workspaces_removed, report.partial_files_removed) == (1, 0)
    assert report.bytes_freed == expected_bytes and report.failures == 0
    row = await Backup.get(id=backup.id)
    assert (row.status, row.warnings) == ("failed", [INTERRUPTED_WARNING])
    assert report.render().startswith("removed 1 compile workspace and 0 partial files")
    again = await sweep_leftovers(datetime.now(UTC), store)
    assert not again.found_anything


async def test_the_workspace_of_a_compile_a_live_job_may_be_running_is_kept(
    project: int, data_dir: Path
) -> None:
    # Quiet for longer than the threshold, yet a job queued before the backup holds a live lease.
    job = await compile_job(timedelta(seconds=60), queued_ago=KILLED_AGO + timedelta(minutes=1))
    backup, workspace = await compile_in_progress(data_dir, project, KILLED_AGO)
    store = LocalBlobStore(data_dir)

    report = await sweep_leftovers(datetime.now(UTC), store)

    assert workspace.is_dir() and size_of(workspace) > len(PARTIAL_PDF)
    assert (report.workspaces_removed, report.workspaces_kept) == (0, 1)
    assert (await Backup.get(id=backup.id)).status == "running"

    # The lease runs out (its process died): the next sweep takes the workspace.
    await Job.filter(id=job.id).update(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    report = await sweep_leftovers(datetime.now(UTC), store)
    assert not workspace.exists() and report.workspaces_removed == 1


async def test_a_live_job_queued_after_the_backup_does_not_keep_its_workspace(
    project: int, data_dir: Path
) -> None:
    await compile_job(timedelta(seconds=60), queued_ago=timedelta(minutes=1))  # another compile
    _, workspace = await compile_in_progress(data_dir, project, KILLED_AGO)

    report = await sweep_leftovers(datetime.now(UTC), LocalBlobStore(data_dir))

    assert not workspace.exists() and report.workspaces_removed == 1


async def test_leftovers_younger_than_the_threshold_are_kept(project: int, data_dir: Path) -> None:
    _, workspace = await compile_in_progress(data_dir, project, LEFTOVER_QUIET_FOR / 2)
    _, touched = await compile_in_progress(data_dir, project, KILLED_AGO)
    os.utime(touched)  # a live compile's heartbeat: the folder itself changed just now
    staged = data_dir / f"{blob_key(SHA)}#1"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"half a blob")
    age(staged, LEFTOVER_QUIET_FOR / 2)

    report = await sweep_leftovers(datetime.now(UTC), LocalBlobStore(data_dir))

    assert workspace.is_dir() and touched.is_dir() and staged.is_file()
    assert not report.found_anything


async def test_published_backups_and_other_folders_stay_finished_and_orphaned_workspaces_go(
    project: int, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_leftovers_module, "ROWS_PER_QUERY", 1)  # rows read in batches
    published, published_folder = await compile_in_progress(
        data_dir, project, KILLED_AGO, status="succeeded"
    )
    pdf = published_folder / "Riverside backup.pdf"
    pdf.write_bytes(PARTIAL_PDF)
    await Backup.filter(id=published.id).update(
        file_path=f"backups/{published_folder.name}/{pdf.name}", file_name=pdf.name
    )
    age(published_folder, timedelta(days=3))
    failed, failed_folder = await compile_in_progress(
        data_dir, project, KILLED_AGO, status="failed"
    )
    orphan = data_dir / "backups" / "999999-0badf00d"
    orphan.mkdir()
    (orphan / "Riverside backup.pdf").write_bytes(PARTIAL_PDF)
    age(orphan, KILLED_AGO)
    foreign = data_dir / "backups" / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not a workspace")
    age(foreign, timedelta(days=30))

    report = await sweep_leftovers(datetime.now(UTC), LocalBlobStore(data_dir))

    assert pdf.is_file() and foreign.is_dir()
    assert not failed_folder.exists() and not orphan.exists()
    assert (report.workspaces_removed, report.workspaces_kept, report.backups_interrupted) == (
        2,
        0,  # a published backup is no leftover: not counted as kept
        0,
    )
    again = await sweep_leftovers(datetime.now(UTC), LocalBlobStore(data_dir))
    assert not again.found_anything and pdf.is_file()  # nothing to log, hour after hour
    assert (await Backup.get(id=failed.id)).status == "failed"
    assert (await Backup.get(id=published.id)).status == "succeeded"


async def test_partial_writes_of_the_local_store_go_once_quiet(
    database: str, data_dir: Path
) -> None:
    store = LocalBlobStore(data_dir)
    sha256 = await store.put_bytes(b"a stored attachment")
    stored = store.path_for(sha256)
    staged = stored.with_name(f"{stored.name}#3")  # obstore's staging file, left by a kill
    staged.write_bytes(b"x" * 5000)
    not_staging = stored.with_name(f"{stored.name}#draft")
    not_staging.write_bytes(b"not obstore's")
    for path in (stored, staged, not_staging):
        age(path, KILLED_AGO)

    report = await sweep_leftovers(datetime.now(UTC), store)

    assert not staged.exists() and stored.is_file() and not_staging.is_file()
    assert (report.partial_files_removed, report.bytes_freed) == (1, 5000)


async def test_the_s3_stores_workspaces_and_partial_downloads_on_this_host_go(
    project: int, data_dir: Path
) -> None:
    # The sweep reads only the local cache folder: the bucket is never asked.
    store = S3BlobStore(
        "unused-bucket",
        endpoint="http://127.0.0.1:9",
        cache_dir=data_dir / "cache",
        cache_bytes=1 << 20,
    )
    workspaces = data_dir / "cache" / "compiles"
    _, workspace = await compile_in_progress(workspaces, project, KILLED_AGO)
    partial = store.cache.partial_path()
    partial.write_bytes(b"y" * 700)
    age(partial, KILLED_AGO)
    cached = store.cache.path_for(SHA)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a cached blob")
    age(cached, KILLED_AGO)

    report = await sweep_leftovers(datetime.now(UTC), store)

    assert not workspace.exists() and not partial.exists() and cached.is_file()
    assert (report.workspaces_removed, report.partial_files_removed) == (1, 1)


async def test_nothing_is_removed_when_the_rows_cannot_be_read(
    project: int, data_dir: Path
) -> None:
    _, workspace = await compile_in_progress(data_dir, project, KILLED_AGO)
    await close_database()

    with pytest.raises(ConfigurationError):  # no database: the rows cannot be read
        await sweep_leftovers(datetime.now(UTC), LocalBlobStore(data_dir))

    assert workspace.is_dir()
