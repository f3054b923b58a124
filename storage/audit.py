"""The audit trail: every compile request, access change and digest run, with its outcome."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """Who (`actor`: ``slack:U…``, ``cli:…``, ``schedule:N``) did what, when, on which project,
    and how it ended (`outcome`: ``granted``, ``refused``, ``succeeded``, ``failed`` …)."""

    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(auto_now_add=True, db_index=True)
    actor = fields.CharField(max_length=255)
    action = fields.CharField(max_length=64)
    project_id = fields.BigIntField(null=True, db_index=True)
    outcome = fields.CharField(max_length=32)
    details: Any = fields.JSONField(default=dict)

    class Meta:
        table = "audit_entries"
