"""Digest schedules: a weekly backup of a project posted to a channel."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

SELECTIONS: tuple[str, ...] = ("open_period", "last_7_days")
DEFAULT_STATUSES: tuple[str, ...] = ("approved", "approved_as_noted", "pending_owner_approval")


def default_statuses() -> list[str]:
    """The statuses of a new schedule (a named function: migrations cannot serialize lambdas)."""
    return list(DEFAULT_STATUSES)


class Schedule(Model):
    """Every `weekday` (0 = Monday) at `time_of_day` (``HH:MM``) in `timezone`, compile the
    invoices chosen by `selection` (filtered by `statuses`) as the owner and post to `channel_id`.

    The owner is kept as the requester the permission module needs (Slack id, e-mail, name);
    their access is checked again at every run.
    """

    id = fields.IntField(primary_key=True)
    project = fields.ForeignKeyField(
        "models.Project", related_name="schedules", on_delete=fields.CASCADE
    )
    owner_key = fields.CharField(max_length=255)
    owner_slack_user_id = fields.CharField(max_length=32, null=True, db_index=True)
    owner_email = fields.CharField(max_length=320, null=True)
    owner_name = fields.CharField(max_length=255, default="")
    channel_id = fields.CharField(max_length=32)
    weekday = fields.IntField()
    time_of_day = fields.CharField(max_length=5)
    timezone = fields.CharField(max_length=64, default="UTC")
    selection = fields.CharField(max_length=16, default="open_period")
    statuses: Any = fields.JSONField(default=default_statuses)
    skip_empty = fields.BooleanField(default=False)
    # the owner chose to include private contracts (warned who in the channel would see them)
    include_private = fields.BooleanField(default=False, db_default=False)
    paused = fields.BooleanField(default=False)
    paused_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    project_id: int

    class Meta:
        table = "schedules"
