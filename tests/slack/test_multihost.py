"""Several hosts with no shared disk: every process has its own BACKUPS_DATA_DIR, all share one
PostgreSQL database and one S3 bucket (a real SeaweedFS server).

- Two real ``serve`` processes, 20 submissions spread over both, one process killed (SIGKILL, its
  whole process group) while it holds jobs: every submission ends with exactly one PDF, one final
  reply, and the PDF in the thread is the one in the bucket.
- A backup compiled by one bot (then stopped before its upload) is delivered by another bot with
  another data folder and cache, streamed from the bucket, without compiling again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.server import BotServer
from commands.compile_backups import CompileResult, compile_backup
from commands.demo import write_demo_bundle
from commands.import_bundle import import_bundle
from storage.blobs import S3BlobStore
from storage.db import open_database
from storage.jobs import Job, JobStatus
from storage.models import Backup
from storage.slack_deliveries import SlackDelivery
from tests.conftest import s3_store
from tests.s3_server import S3Server, new_bucket_name
from tests.slack.conftest import PM, SIGNING_SECRET, bot_settings, finished_jobs, request_backup
from tests.slack.fake_slack import FakeSlack
from tests.slack.serve_process import ServeProcess, serve_environment, start_serve
from tests.slack.slack_driver import SlackDriver
from tests.slack.test_multiprocess import submit_and_kill_one


async def stored_bytes(store: S3BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read_chunks(key)])


@pytest.mark.postgres
async def test_two_hosts_without_a_shared_disk_post_each_pdf_exactly_once(
    fake_slack: FakeSlack,
    pg_database: str,
    s3_server: S3Server,
    tmp_path: Path,
    serves: list[ServeProcess],
) -> None:
    bucket = new_bucket_name()
    await open_database(pg_database, migrate=True)
    importer = s3_store(s3_server, tmp_path / "importer-cache", bucket=bucket)
    await import_bundle(write_demo_bundle(tmp_path / "bundle"), importer)
    for name in ("a", "b"):
        host_dir = tmp_path / f"host-{name}"
        host_dir.mkdir()
        env = serve_environment(pg_database, host_dir, fake_slack, lease=3)
        env.update(s3_server.environment(bucket), BACKUPS_CACHE_MB="16")
        serves.append(await start_serve(env, tmp_path / f"serve-{name}.log"))
    survivor, _ = await submit_and_kill_one(serves, fake_slack)
    for delivery in await SlackDelivery.all():  # what Slack holds is the PDF in the bucket
        [upload] = fake_slack.files_in_thread(str(delivery.parent_channel), str(delivery.parent_ts))
        key = CompileResult.from_json(delivery.result or {}).file_key
        assert key is not None and upload.data == await stored_bytes(importer, key)
    for name in ("a", "b"):  # no host keeps blobs or PDFs of its own: only its cache
        host_dir = tmp_path / f"host-{name}"
        assert not (host_dir / "blobs").exists() and not (host_dir / "backups").exists()
    # The survivor's cache holds no PDF. The killed host's may hold the output of the compile it
    # was killed in, in that compile's workspace (the job that another process took over).
    assert not list((tmp_path / "host-b" / "cache").rglob("*.pdf"))
    workspaces = tmp_path / "host-a" / "cache" / "compiles"
    left_by_the_killed = list((tmp_path / "host-a" / "cache").rglob("*.pdf"))
    assert all(path.is_relative_to(workspaces) for path in left_by_the_killed), left_by_the_killed
    assert survivor.process.returncode is None and "Traceback" not in survivor.log


async def test_a_backup_compiled_by_one_bot_is_delivered_by_another(
    fake_slack: FakeSlack, database: str, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket_store = s3_store(s3_server, tmp_path / "importer-cache")
    await import_bundle(write_demo_bundle(tmp_path / "bundle"), bucket_store)
    compiles: list[str] = []

    async def counted_compile(*args: Any, **kwargs: Any) -> CompileResult:
        compiles.append("compile")
        return await compile_backup(*args, **kwargs)

    def host(name: str) -> BotServer:
        """A bot with a store of its own on the shared bucket (its own cache folder)."""
        store = s3_store(
            s3_server, tmp_path / f"host-{name}" / "cache", 16 << 20, bucket_store.bucket
        )
        return BotServer(
            bot_settings(fake_slack, shutdown_grace_seconds=0.0),
            blob_store=store,
            compile_function=counted_compile,  # type: ignore[arg-type]
            worker_options={"poll_seconds": 0.2},
        )

    # The first bot's upload waits (Slack says: retry in a minute); it stops meanwhile.
    fake_slack.rate_limit("files.getUploadURLExternal", retry_after=60, times=1)
    first = host("a")
    await first.start()
    try:
        async with aiohttp.ClientSession() as session:
            slack = SlackDriver(session, first.url, SIGNING_SECRET, fake_slack)
            await request_backup(slack, PM, [9001, 9011])
        await fake_slack.wait_for(lambda: fake_slack.calls_to("files.getUploadURLExternal"))
    finally:
        await first.stop()
    [job] = await Job.all()
    [delivery] = await SlackDelivery.all()
    assert job.status == JobStatus.QUEUED
    assert delivery.result is not None and delivery.file_id is None

    second = host("b")
    await second.start()
    try:
        [done] = await finished_jobs(1)
    finally:
        await second.stop()
    assert done.status == JobStatus.SUCCEEDED, done.error
    assert compiles == ["compile"]  # delivered, not compiled again
    [parent] = fake_slack.top_level_messages()
    [upload] = fake_slack.files_in_thread(parent.channel, parent.ts)
    [backup] = await Backup.all()
    assert upload.data == await stored_bytes(bucket_store, str(backup.file_path))
    assert len(fake_slack.replies(parent.channel, parent.ts)) == 1
