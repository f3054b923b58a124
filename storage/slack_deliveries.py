"""The Slack side of a job that posts in Slack (a compile, a digest): what it already posted, so a
resumed run skips it and never posts twice.

One `SlackDelivery` row per such job (made at its first step), beside the generic `Job`. Every
recorder writes in one transaction with `storage.jobs.fence`: only while the caller still holds
the job's lease, `LeaseLost` otherwise.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from storage import jobs
from storage.jobs import Job


class SlackDelivery(Model):
    """The steps a job already did in Slack, each recorded right after it happened."""

    id = fields.IntField(primary_key=True)
    job: fields.OneToOneRelation[Job] = fields.OneToOneField(
        "models.Job", related_name="slack_delivery", on_delete=fields.CASCADE
    )
    parent_channel = fields.CharField(max_length=40, null=True)
    parent_ts = fields.CharField(max_length=40, null=True)
    delivery_note = fields.TextField(null=True)  # why the job posts somewhere else than asked
    pdf_path = fields.TextField(null=True)
    result: dict[str, Any] | None = fields.JSONField(null=True)  # type: ignore[assignment]
    file_id = fields.CharField(max_length=40, null=True)
    final_reply_ts = fields.CharField(max_length=40, null=True)

    job_id: int

    class Meta:
        table = "slack_deliveries"

    def __str__(self) -> str:
        return f"Slack delivery of job {self.job_id}"


async def delivery_of(job: Job | int) -> SlackDelivery:
    """The recorded Slack steps of ``job`` (a blank, unsaved row when none was recorded yet)."""
    job_id = job if isinstance(job, int) else job.id
    found = await SlackDelivery.get_or_none(job_id=job_id)
    return found if found is not None else SlackDelivery(job_id=job_id)


async def _record(job: Job, owner: str, delivery: SlackDelivery, **values: Any) -> None:
    async with in_transaction() as connection:
        await jobs.fence(job, owner, connection)
        changed = await SlackDelivery.filter(job_id=job.id).using_db(connection).update(**values)
        if changed == 0:
            await SlackDelivery.create(job_id=job.id, using_db=connection, **values)
    for name, value in values.items():
        setattr(delivery, name, value)


async def record_parent_message(
    job: Job, owner: str, delivery: SlackDelivery, channel: str, ts: str, note: str | None
) -> None:
    """Step: the parent message was posted in ``channel`` at ``ts`` (``note``: why there)."""
    await _record(job, owner, delivery, parent_channel=channel, parent_ts=ts, delivery_note=note)


async def record_compiled(
    job: Job, owner: str, delivery: SlackDelivery, pdf_path: str | None, result: dict[str, Any]
) -> None:
    """Step: the backup was compiled (``pdf_path`` None when nothing could be compiled)."""
    await _record(job, owner, delivery, pdf_path=pdf_path, result=result)


async def record_upload(job: Job, owner: str, delivery: SlackDelivery, file_id: str) -> None:
    """Step: the PDF was uploaded to Slack as ``file_id``."""
    await _record(job, owner, delivery, file_id=file_id)


async def record_final_reply(job: Job, owner: str, delivery: SlackDelivery, ts: str) -> None:
    """Step: the final thread reply (success, warning or failure) was posted at ``ts``."""
    await _record(job, owner, delivery, final_reply_ts=ts)


async def threads_of_results(limit: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(channel, ts, result) of the latest ``limit`` deliveries that posted a compile result,
    newest job first."""
    rows = (
        await SlackDelivery.filter(result__isnull=False, parent_ts__isnull=False)
        .order_by("-job_id")
        .limit(limit)
        .values("parent_channel", "parent_ts", "result")
    )
    return [(str(r["parent_channel"]), str(r["parent_ts"]), r["result"] or {}) for r in rows]
