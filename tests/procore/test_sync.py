"""Syncing from the fake Procore over real HTTP into SQLite and PostgreSQL: a full sync equals
importing the same bundle (rows and compiled PDF), incremental syncs, deletions on the full
pass, unreachable projects, token expiry and 429 storms mid-sync, the freshness re-read before a
compile, Procore down at compile time, and fail-closed permissions end to end."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from bot.blocks.access import access_modal, roster_line
from bot.blocks.messages import success_reply
from bot.procore_sync_job import PROCORE_SYNC, SyncTakenOver, sync_in_this_process
from commands import manage_access
from commands.access import AccessDenied, Requester, compile_access
from commands.compile_backups import CompileResult, compile_backup, format_size
from commands.demo import ADMIN_EMAIL, PROJECT_ID
from commands.import_bundle import import_bundle
from commands.procore_freshness import ProcoreFreshness
from commands.sync_procore import SYNCED, UNREACHABLE, ProjectSyncLine, sync_company, sync_project
from procore.client import ProcoreClient
from storage.blobs import LocalBlobStore, StoredObject
from storage.jobs import Job, JobStatus
from storage.models import Attachment, Backup, Commitment, Invoice, Project, ProjectUser
from tests.procore.fake_procore import (
    SIGNED_ATTACHMENT_ID_BASE,
    FakeProcore,
    FakeProject,
    ProcoreWorld,
    touch,
    world_from_bundle,
)
from tests.procore.fixtures import client_config
from tests.storage.bundles import dump_database
from tests.waiting import JOB_PATIENCE, eventually

ADMIN = Requester(key="test:admin", email=ADMIN_EMAIL, display_name="PM")
FIXED_NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
# Columns that say when or from where, not what: they differ between a sync and an import.
VOLATILE = {
    "updated_at",
    "created_at",
    "source",
    "synced_at",
    "full_synced_at",
    "source_updated_at",
    "detail_updated_at",
}


@pytest.fixture
def demo_folder(demo_bundle: Path) -> Path:
    return demo_bundle


@pytest.fixture
def demo_world(demo_folder: Path) -> ProcoreWorld:
    return world_from_bundle(demo_folder)


@pytest.fixture
def procore_world(demo_world: ProcoreWorld) -> ProcoreWorld:
    """The shared `fake_procore` serves the demo project here (not the sample bundle)."""
    return demo_world


@pytest.fixture
def fake(fake_procore: FakeProcore) -> FakeProcore:
    return fake_procore


@pytest.fixture
def client(procore_client: ProcoreClient) -> ProcoreClient:
    return procore_client


def stable(dump: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        model: sorted(
            (
                {
                    k: v
                    for k, v in row.items()
                    if k not in VOLATILE and not (model == "ProjectUser" and k == "id")
                }
                for row in rows
            ),
            key=repr,
        )
        for model, rows in dump.items()
        if model != "Backup"
    }


def pdf_pages(result: CompileResult) -> list[str]:
    assert result.pdf_path is not None
    return [page.extract_text() or "" for page in PdfReader(result.pdf_path).pages]


async def compile_all(
    data_dir: Path, freshness: ProcoreFreshness | None = None, now: datetime = FIXED_NOW
) -> CompileResult:
    ids = await Invoice.filter(project_id=PROJECT_ID).order_by("id").values_list("id", flat=True)
    return await compile_backup(
        ADMIN,
        PROJECT_ID,
        [int(i) for i in ids],
        blobs=LocalBlobStore(data_dir),
        now=now,
        freshness=freshness,
    )


async def test_a_full_sync_equals_importing_the_same_bundle(
    database: str, data_dir: Path, demo_folder: Path, client: ProcoreClient
) -> None:
    report = await sync_company(client)
    assert [line.outcome for line in report.lines] == [SYNCED]
    assert report.lines[0].full
    project = await Project.get(id=PROJECT_ID)
    assert project.source == "procore" and project.full_synced_at is not None
    # Lazy detail: the lists are there, the G703 lines and files are not yet.
    assert await Invoice.filter(project_id=PROJECT_ID, detail_updated_at__isnull=True).count() > 0
    freshness = ProcoreFreshness(client, LocalBlobStore(data_dir))
    ids = await Invoice.filter(project_id=PROJECT_ID).values_list("id", flat=True)
    fresh = await freshness.refresh(PROJECT_ID, [int(i) for i in ids])
    assert fresh.stale_as_of is None and fresh.refreshed == len(ids) and fresh.downloaded > 0
    synced_rows = stable(await dump_database())
    synced = await compile_all(data_dir, freshness)
    assert synced.data_as_of is None

    await Backup.all().delete()
    await Project.all().delete()
    await import_bundle(demo_folder, LocalBlobStore(data_dir))
    assert stable(await dump_database()) == synced_rows
    imported = await compile_all(data_dir)
    assert (imported.page_count, imported.invoice_count) == (
        synced.page_count,
        synced.invoice_count,
    )
    assert pdf_pages(imported) == pdf_pages(synced)
    assert imported.left_out_attachments == synced.left_out_attachments


async def test_incremental_sync_reads_only_changes_and_a_full_pass_deletes(
    database: str, fake: FakeProcore, client: ProcoreClient
) -> None:
    await sync_company(client)
    world_project = fake.world.projects[PROJECT_ID]
    requisition_id = next(iter(world_project.requisitions))
    world_project.requisitions[requisition_id]["status"] = "approved_as_noted"
    touch(world_project.requisitions[requisition_id], offset_seconds=1)
    removed_id = list(world_project.requisitions)[-1]
    del world_project.requisitions[removed_id]
    fake.clear_logs()

    line = await sync_project(client, PROJECT_ID)
    assert line.outcome == SYNCED and not line.full, line.render()
    assert (await Invoice.get(id=requisition_id)).status == "approved_as_noted"
    assert await Invoice.exists(id=removed_id)  # an incremental pass cannot see deletions
    assert all(
        "filters[updated_at]" in entry.query
        for entry in fake.api_requests("/requisitions")
        if entry.path == "/rest/v1.1/requisitions"
    )

    # A day later the sync is a full pass, which catches the deletion.
    await Project.filter(id=PROJECT_ID).update(
        full_synced_at=datetime.now(UTC) - timedelta(days=1, minutes=1)
    )
    line = await sync_project(client, PROJECT_ID)
    assert line.full and "invoices deleted" in line.detail
    assert not await Invoice.exists(id=removed_id)


async def test_an_unreachable_project_is_marked_and_the_others_go_on(
    database: str, fake: FakeProcore, client: ProcoreClient
) -> None:
    fake.world.add_project(FakeProject(id=77, name="Locked", project_number="L-7", forbidden=True))
    report = await sync_company(client)
    outcomes = {line.project_id: line.outcome for line in report.lines}
    assert outcomes == {PROJECT_ID: SYNCED, 77: UNREACHABLE}
    locked = await Project.get(id=77)
    assert locked.unreachable_reason and "permitted projects" in locked.unreachable_reason
    assert (locked.name, locked.project_number) == ("Locked", "L-7")
    assert "Locked (L-7): unreachable" in report.render()

    # Once it is permitted, the next sync clears the reason.
    fake.world.projects[77].forbidden = False
    await sync_company(client, project_numbers=["L-7"])
    assert (await Project.get(id=77)).unreachable_reason is None


async def test_token_expiry_and_a_429_storm_mid_sync_lose_nothing(
    database: str, fake: FakeProcore, client: ProcoreClient
) -> None:
    fake.world.add_project(FakeProject(id=78, name="Second", project_number="S-2"))
    fake.inject("429", times=4, retry_after=0.2)

    async def between_projects(done: int, total: int, line: ProjectSyncLine) -> None:
        if done == 1:  # the token dies between two projects' reads
            fake.expire_tokens()
            fake.inject("429", times=3, retry_after=0.2)

    report = await sync_company(client, full=True, progress=between_projects)
    assert report.all_synced, report.render()
    assert client.stats.token_mints == 2 and client.stats.rate_limited >= 6
    assert await Invoice.filter(project_id=PROJECT_ID).count() == len(
        fake.world.projects[PROJECT_ID].requisitions
    )


async def test_the_freshness_re_read_changes_what_is_compiled(
    database: str, data_dir: Path, fake: FakeProcore, client: ProcoreClient
) -> None:
    await sync_company(client)
    freshness = ProcoreFreshness(client, LocalBlobStore(data_dir))
    before = await compile_all(data_dir, freshness)
    world_project = fake.world.projects[PROJECT_ID]
    requisition = next(iter(world_project.requisitions.values()))
    old_number = requisition["invoice_number"]
    requisition["invoice_number"] = "FRESH-42"
    touch(requisition, offset_seconds=2)
    fake.clear_logs()
    after = await compile_all(data_dir, freshness)
    assert after.data_as_of is None
    text_before, text_after = "\n".join(pdf_pages(before)), "\n".join(pdf_pages(after))
    assert "FRESH-42" in text_after and "FRESH-42" not in text_before
    assert old_number in text_before
    # One header request and one detail re-read: only the changed invoice.
    shows = [e for e in fake.api_requests("/rest/v1.1/requisitions/") if e.status == 200]
    assert len(fake.api_requests()) == 1 + len(shows) and len(shows) == 1


async def test_procore_down_at_compile_time_compiles_from_the_last_sync(
    database: str, data_dir: Path, fake: FakeProcore
) -> None:
    # A client that gives up on 503s after a second (the fixture's waits 30 s per request).
    async with ProcoreClient(client_config(fake, max_slowdown_seconds=1.0)) as client:
        await sync_company(client)
        freshness = ProcoreFreshness(client, LocalBlobStore(data_dir))
        await compile_all(data_dir, freshness)  # details and files read once
        synced_at = (await Project.get(id=PROJECT_ID)).synced_at
        assert synced_at is not None
        fake.inject("503", times=1000, retry_after=0.05)
        result = await compile_all(data_dir, freshness)
    assert result.status == "succeeded" and result.data_as_of is not None
    assert abs((result.data_as_of - synced_at).total_seconds()) < 1
    assert result.data_note and result.data_note.startswith("Procore data as of ")
    assert "Procore could not be reached" in result.summary_text()
    assert result.data_note in pdf_pages(result)[0]
    assert CompileResult.from_json(result.to_json()) == result


async def test_permissions_fail_closed_end_to_end(
    database: str, fake: FakeProcore, client: ProcoreClient
) -> None:
    fake.world.permission_templates_forbidden = True
    await sync_company(client)
    users = await ProjectUser.filter(project_id=PROJECT_ID)
    assert users and all(not user.access_known for user in users)
    assert all(user.commitments_access == "none" for user in users)
    with pytest.raises(AccessDenied):
        await compile_access(ADMIN, PROJECT_ID)
    owner = Requester("slack:U0OWNER", "owner@example.com", "Owner", "U0OWNER")
    owners = frozenset({"U0OWNER"})
    roster = await manage_access.roster(owner, PROJECT_ID, owners)
    assert roster and all(not line.access_known for line in roster)
    assert "level could not be read from Procore" in roster_line(roster[0])

    # Templates readable again, but one private contract's list is not.
    fake.world.permission_templates_forbidden = False
    world_project = fake.world.projects[PROJECT_ID]
    private = [c for c in world_project.work_order_contracts if c.get("private")]
    assert private, "the demo has a private contract"
    world_project.accessors.pop(private[0]["id"], None)
    await sync_project(client, PROJECT_ID, full=True)
    stored = await Commitment.get(id=private[0]["id"])
    assert not stored.private_list_known and stored.private_list == []
    assert (await compile_access(ADMIN, PROJECT_ID)).project.id == PROJECT_ID
    settings = await manage_access.project_settings(owner, PROJECT_ID, owners)
    assert settings.unreadable_private_lists == (stored.number,)
    modal = json.dumps(
        access_modal(
            [settings.project], settings, await manage_access.roster(owner, PROJECT_ID, owners)
        ).to_dict()
    )
    assert f"The private list of {stored.number} could not be read from Procore" in modal
    assert await Attachment.all().count() > 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_file_over_the_size_cap_gives_the_real_reason(
    database: str, data_dir: Path, fake: FakeProcore, client: ProcoreClient, chunked: bool
) -> None:
    fake.world.chunked_files = chunked
    await sync_company(client)
    world_project = fake.world.projects[PROJECT_ID]
    attachments = [
        (attachment, len(fake.world.files[attachment["file_key"]]))
        for requisition in world_project.requisitions.values()
        for attachment in requisition["attachments"]
        if attachment["id"] < SIGNED_ATTACHMENT_ID_BASE
    ]
    big, size = max(attachments, key=lambda pair: pair[1])
    cap = size - 1
    freshness = ProcoreFreshness(client, LocalBlobStore(data_dir), max_file_bytes=cap)

    result = await compile_all(data_dir, freshness)
    assert result.status == "succeeded"
    reasons = {name: reason for _, name, reason in result.left_out_attachments}
    expected = (
        f"not downloaded from Procore: too large: over the {format_size(cap)} cap"
        if chunked
        else f"not downloaded from Procore: too large: {format_size(size)}, "
        f"over the {format_size(cap)} cap"
    )
    assert reasons[big["filename"]] == expected
    assert "not downloaded from Procore yet" not in reasons.values()
    assert expected in result.summary_text()
    assert expected in " ".join(pdf_pages(result)[0].split())
    assert expected in json.dumps(success_reply(result).blocks)
    assert not await Attachment.filter(id=big["id"], sha256__isnull=False).exists()


class HeadCountingStore(LocalBlobStore):
    """The local store, counting the object lookups (``HEAD``s on S3) made through it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.heads: list[str] = []

    async def _head(self, key: str) -> StoredObject | None:
        self.heads.append(key)
        return await super()._head(key)


async def test_the_freshness_step_asks_the_store_nothing_about_files_already_stored(
    database: str, data_dir: Path, fake: FakeProcore, client: ProcoreClient
) -> None:
    await sync_company(client)
    store = HeadCountingStore(data_dir)
    freshness = ProcoreFreshness(client, store)
    ids = [
        int(i)
        for i in await Invoice.filter(project_id=PROJECT_ID)
        .order_by("id")
        .values_list("id", flat=True)
    ]
    first = await freshness.refresh(PROJECT_ID, ids)
    assert first.downloaded > 0 and store.heads  # storing a new blob looks it up first
    stored = await Attachment.filter(invoice__project_id=PROJECT_ID).values("sha256", "byte_size")
    assert stored and all(row["sha256"] and row["byte_size"] for row in stored)
    signed = await Invoice.filter(project_id=PROJECT_ID, signed_pdf_sha256__isnull=False).count()

    store.heads.clear()
    requisition = next(iter(fake.world.projects[PROJECT_ID].requisitions.values()))
    requisition["invoice_number"] = "FRESH-7"
    touch(requisition, offset_seconds=2)
    again = await freshness.refresh(PROJECT_ID, ids)
    assert again.refreshed == 1 and again.downloaded == 0
    assert store.heads == []  # sizes come from Attachment.byte_size, not one HEAD per file
    after = await Attachment.filter(invoice__project_id=PROJECT_ID).values("sha256", "byte_size")
    assert sorted(map(repr, after)) == sorted(map(repr, stored))
    assert (
        await Invoice.filter(project_id=PROJECT_ID, signed_pdf_sha256__isnull=False).count()
        == signed
    )
    result = await compile_all(data_dir, freshness)
    assert result.status == "succeeded" and "FRESH-7" in "\n".join(pdf_pages(result))


async def test_a_command_line_sync_stops_when_its_job_is_taken_over(
    database: str, fake: FakeProcore, client: ProcoreClient
) -> None:
    """`bot.procore_sync_job.sync_in_this_process` renews its job's lease
    (`bot.worker.keep_lease`); once another process holds the job, the sync stops
    (`SyncTakenOver`) and leaves the job alone."""
    fake.inject("slow", path_contains="/rest/v1.0/projects", delay=5)  # below the 10 s timeout
    sync = asyncio.create_task(sync_in_this_process(client, owner="cli:test", lease_seconds=0.3))
    job = await eventually(
        lambda: Job.get_or_none(kind=PROCORE_SYNC, status=JobStatus.RUNNING),
        JOB_PATIENCE,
        what="the command line's sync job",
    )
    assert job.lease_owner == "cli:test"
    await Job.filter(id=job.id).update(lease_owner="bot:other")  # another process took it over
    with pytest.raises(SyncTakenOver):
        await asyncio.wait_for(sync, JOB_PATIENCE)
    taken = await Job.get(id=job.id)
    assert (taken.status, taken.lease_owner) == (JobStatus.RUNNING, "bot:other")
