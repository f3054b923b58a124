"""What a claimed job does, whatever its kind.

Each Slack-posting job kind turns its job into one `JobWork` (a `JobPlanner`); `bot.slack_jobs`
runs every such kind with one pipeline:

- `CompileWork`: post the parent message, compile, upload the PDF into its thread, reply there;
- `NoticeWork`: post one message instead (an empty digest week, a paused schedule's owner);
- `SkipWork`: nothing to post (a schedule paused or deleted before its run).

A kind whose work is decided when it runs (a digest) records it in the job's ``state``
(`work_to_json`), so a resumed job carries on with the same decision.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.backup_job import BackupJobPayload
from bot.job_kinds import JobRun


@dataclass(frozen=True)
class CompileWork:
    """Compile `request` and post it (the compile pipeline)."""

    request: BackupJobPayload


@dataclass(frozen=True)
class NoticeWork:
    """Post `text` once, then end the job as succeeded with `note`.

    With `channel_id`, the notice goes there (by DM to `user_id` when the bot can't post there,
    saying why); without, straight to `user_id`'s DM.
    """

    text: str
    user_id: str | None
    channel_id: str | None
    note: str
    resume_schedule_id: int | None = None  # offer a Resume button for this paused schedule


@dataclass(frozen=True)
class SkipWork:
    """Nothing to post; the job succeeds with `note`."""

    note: str


JobWork = CompileWork | NoticeWork | SkipWork
JobPlanner = Callable[[JobRun], Awaitable[JobWork]]
"""``planner(run)``: the work of a claimed job (may record a decision in its state)."""


def work_to_json(work: JobWork) -> dict[str, Any]:
    """JSON types only (kept in ``Job.state``)."""
    if isinstance(work, CompileWork):
        return {"work": "compile", "request": work.request.to_json()}
    if isinstance(work, NoticeWork):
        return {
            "work": "notice",
            "text": work.text,
            "user_id": work.user_id,
            "channel_id": work.channel_id,
            "note": work.note,
            "resume_schedule_id": work.resume_schedule_id,
        }
    return {"work": "skip", "note": work.note}


def work_from_json(data: dict[str, Any]) -> JobWork:
    """Inverse of `work_to_json`."""
    if data["work"] == "compile":
        return CompileWork(BackupJobPayload.from_json(data["request"]))
    if data["work"] == "notice":
        return NoticeWork(
            text=str(data["text"]),
            user_id=data.get("user_id"),
            channel_id=data.get("channel_id"),
            note=str(data.get("note") or ""),
            resume_schedule_id=data.get("resume_schedule_id"),
        )
    return SkipWork(str(data.get("note") or ""))


async def plan_compile_job(run: JobRun) -> JobWork:
    """A compile job (from the modal) holds its request as is."""
    return CompileWork(BackupJobPayload.from_json(run.job.payload))
