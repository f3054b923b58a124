"""Digest jobs: one job per (schedule, fire time), planned when it runs.

``Job.payload`` holds ``{"schedule_id", "fire_time"}``; when the worker first runs the job it asks
`commands.digests.plan_digest` (the owner's access is checked then) and records the resulting
`JobWork` in the job's state under ``"plan"``, so a resumed job does what was decided, without
planning again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.backup_job import BackupJobPayload
from bot.job_kinds import JobRun
from bot.job_work import CompileWork, JobWork, NoticeWork, SkipWork, work_from_json, work_to_json
from commands.digests import DigestPlan, job_key, plan_digest
from storage import jobs
from storage.jobs import DIGEST, Enqueued


@dataclass(frozen=True)
class DigestJobPayload:
    """Which schedule runs, for which fire time (an aware datetime)."""

    schedule_id: int
    fire_time: datetime

    def to_json(self) -> dict[str, Any]:
        """JSON types only (for ``Job.payload``)."""
        return {"schedule_id": self.schedule_id, "fire_time": self.fire_time.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DigestJobPayload:
        """Inverse of `to_json`."""
        return cls(int(data["schedule_id"]), datetime.fromisoformat(str(data["fire_time"])))


def run_now_key(schedule_id: int, action_ts: str) -> str:
    """The idempotency key of a "Run now" click: Slack retries of one click make one job."""
    return f"digest-now:{schedule_id}:{action_ts}"


async def enqueue_digest(schedule_id: int, fire_time: datetime, key: str | None = None) -> Enqueued:
    """Queue the run of ``schedule_id`` at ``fire_time`` once per key (default: the scheduled
    run's key, `commands.digests.job_key`, the same in every process)."""
    payload = DigestJobPayload(schedule_id, fire_time)
    return await jobs.enqueue(
        key or job_key(schedule_id, fire_time), payload.to_json(), kind=DIGEST
    )


def digest_work(plan: DigestPlan) -> JobWork:
    """What a run does, given its plan."""
    owner_id = plan.requester.slack_user_id if plan.requester is not None else None
    if plan.status == "ready":
        assert plan.requester is not None and plan.project_id is not None and plan.channel_id
        return CompileWork(
            BackupJobPayload(
                channel_id=plan.channel_id,
                user_id=owner_id or "",
                project_id=plan.project_id,
                project_label=plan.headline,
                invoice_ids=plan.invoice_ids,
                requester=plan.requester,
                timezone=plan.timezone,
                title=plan.headline,
            )
        )
    if plan.status == "empty" and not plan.skip_empty and plan.channel_id:
        return NoticeWork(plan.message, owner_id, plan.channel_id, "nothing to include")
    if plan.status == "owner_lost_access" and owner_id:
        return NoticeWork(plan.message, owner_id, None, plan.message, plan.schedule_id)
    return SkipWork(plan.message or f"nothing to post ({plan.status})")


async def plan_digest_job(run: JobRun) -> JobWork:
    """The recorded plan of a digest job, or plan it now and record it."""
    recorded = (run.job.state or {}).get("plan")
    if recorded:
        return work_from_json(recorded)
    payload = DigestJobPayload.from_json(run.job.payload)
    work = digest_work(await plan_digest(payload.schedule_id, payload.fire_time))
    await run.record_state(plan=work_to_json(work))
    return work
