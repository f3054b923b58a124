"""Migration 0005_job_kinds on SQLite and PostgreSQL: the jobs of a deployed system (queued and
running ones included) keep their Slack steps, now in ``slack_deliveries``, and a digest's plan
moves from its payload into its state."""

from __future__ import annotations

import importlib
import json

from tortoise import connections

from storage.db import close_database, open_database
from storage.jobs import Job, JobStatus
from storage.schema import apply_migrations
from storage.slack_deliveries import SlackDelivery

JOB_KINDS_MIGRATION = importlib.import_module("migrations.0005_job_kinds").Migration
((_, BEFORE_JOB_KINDS),) = JOB_KINDS_MIGRATION.dependencies
OLD_JOB_COLUMNS = (
    "kind, idempotency_key, status, payload, attempts, lease_owner, parent_channel, parent_ts,"
    " delivery_note, pdf_path, result, file_id, final_reply_ts, created_at, updated_at"
)


async def test_existing_jobs_keep_their_steps_and_plans(database_url: str) -> None:
    await open_database(database_url, check_schema=False)
    try:
        await apply_migrations(BEFORE_JOB_KINDS)
        connection = connections.get("default")
        postgres = connection.capabilities.dialect == "postgres"
        marks = ", ".join(f"${n}" if postgres else "?" for n in range(1, 14))
        plan = {"work": "skip", "note": "schedule paused"}
        old_rows = [
            # a running compile that had posted its parent and compiled
            ["compile_backup", "k-running", "running", {"channel_id": "C1"}, 1, "dead:1:a",
             "C1", "1.5", "why here", "/data/b.pdf", {"backup_id": 5}, None, None],
            # a digest queued after planning (resumed at shutdown)
            ["digest", "k-digest", "queued", {"schedule_id": 3, "plan": plan}, 0, None,
             None, None, None, None, None, None, None],
            # a queued compile with nothing done yet
            ["compile_backup", "k-queued", "queued", {"channel_id": "C2"}, 0, None,
             None, None, None, None, None, None, None],
        ]  # fmt: skip
        for row in old_rows:
            values = [json.dumps(v) if isinstance(v, dict) else v for v in row]
            await connection.execute_query(
                f"INSERT INTO jobs ({OLD_JOB_COLUMNS}) VALUES ({marks},"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                values,
            )
        # Up to 0005 only: later migrations (other branches) are not this test's business.
        assert await apply_migrations("0005_job_kinds") == ["models.0005_job_kinds"]

        running = await Job.get(idempotency_key="k-running")
        assert running.status == JobStatus.RUNNING and running.lease_owner == "dead:1:a"
        assert running.payload == {"channel_id": "C1"} and running.state == {}
        steps = await SlackDelivery.get(job_id=running.id)
        assert (steps.parent_channel, steps.parent_ts, steps.delivery_note) == (
            "C1",
            "1.5",
            "why here",
        )
        assert steps.pdf_path == "/data/b.pdf" and steps.result == {"backup_id": 5}
        assert steps.file_id is None and steps.final_reply_ts is None

        digest = await Job.get(idempotency_key="k-digest")
        assert digest.payload == {"schedule_id": 3} and digest.state == {"plan": plan}
        queued = await Job.get(idempotency_key="k-queued")
        assert queued.state == {} and queued.owner_lock is None
        assert await SlackDelivery.all().count() == 1
    finally:
        await close_database()
