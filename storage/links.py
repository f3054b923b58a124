"""Explicit links from a Slack user to a project user, made by an admin; they win over e-mail."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SlackLink(Model):
    """Slack user `slack_user_id` is project user `user_id` (a Procore id) on `project`.

    Keyed by the Procore user id rather than the `ProjectUser` row, so a re-import that rewrites
    the directory keeps the link; a link to a user no longer in the project simply matches nobody.
    """

    id = fields.IntField(primary_key=True)
    slack_user_id = fields.CharField(max_length=32, db_index=True)
    project = fields.ForeignKeyField(
        "models.Project", related_name="slack_links", on_delete=fields.CASCADE
    )
    user_id = fields.BigIntField()
    created_by = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    project_id: int

    class Meta:
        table = "slack_links"
        unique_together = (("slack_user_id", "project"),)
