"""What a compile job holds (``Job.payload``) and how a modal submission becomes one job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.blocks.messages import JobHeadline
from commands.access import Requester
from storage import jobs
from storage.jobs import COMPILE_BACKUP, Enqueued


@dataclass(frozen=True)
class BackupJobPayload:
    """A compile request from Slack: who, where to post, which project and invoices."""

    channel_id: str
    user_id: str
    project_id: int
    project_label: str
    invoice_ids: tuple[int, ...]
    requester: Requester
    timezone: str
    title: str | None = None  # the parent message's own headline (a digest's), if any

    @property
    def headline(self) -> JobHeadline:
        """What the job's parent message says it is about."""
        return JobHeadline(len(self.invoice_ids), self.project_label, self.user_id, self.title)

    def to_json(self) -> dict[str, Any]:
        """JSON types only (for ``Job.payload``)."""
        return {
            "channel_id": self.channel_id,
            "user_id": self.user_id,
            "project_id": self.project_id,
            "project_label": self.project_label,
            "invoice_ids": list(self.invoice_ids),
            "requester": {
                "key": self.requester.key,
                "email": self.requester.email,
                "display_name": self.requester.display_name,
                "slack_user_id": self.requester.slack_user_id,
            },
            "timezone": self.timezone,
            "title": self.title,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BackupJobPayload:
        """Inverse of `to_json`."""
        requester = data["requester"]
        return cls(
            channel_id=str(data["channel_id"]),
            user_id=str(data["user_id"]),
            project_id=int(data["project_id"]),
            project_label=str(data["project_label"]),
            invoice_ids=tuple(int(i) for i in data["invoice_ids"]),
            requester=Requester(
                key=str(requester["key"]),
                email=requester.get("email"),
                display_name=str(requester.get("display_name") or ""),
                slack_user_id=requester.get("slack_user_id"),
            ),
            timezone=str(data.get("timezone") or "UTC"),
            title=data.get("title"),
        )


def submission_key(view_id: str, view_hash: str) -> str:
    """The idempotency key of a modal submission: Slack retries and double clicks of the same
    view (same id, same hash) map to one job."""
    return f"slack-view:{view_id}:{view_hash}"


async def enqueue_backup(key: str, payload: BackupJobPayload) -> Enqueued:
    """Queue the compile job (once per ``key``)."""
    return await jobs.enqueue(key, payload.to_json(), kind=COMPILE_BACKUP)
