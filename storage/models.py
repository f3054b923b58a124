"""Tortoise models of a project as imported from Procore, and of compiled backups.

Ids are Procore ids (64-bit: Procore ids exceed 2**31), never generated, except `ProjectUser.id`
and `Backup.id`. Money is `Decimal`; JSON columns hold money as the strings Procore sent.
Attachment bytes live in the blob store (`storage.blobs`), never in the database: rows hold
their sha256 only. The allowed values of the status and setting columns are the tuples below;
`sources.bundle` validates against them. A NOT NULL column added by a later migration has a
``db_default`` (SQLite and PostgreSQL refuse to add it to a table holding rows otherwise).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

INVOICE_STATUSES: tuple[str, ...] = (
    "draft",
    "under_review",
    "revise_and_resubmit",
    "pending_owner_approval",
    "approved_as_noted",
    "approved",
)
BILLING_PERIOD_STATUSES: tuple[str, ...] = ("open", "closed")
ACCESS_LEVELS: tuple[str, ...] = ("none", "read_only", "standard", "admin")
BACKUP_STATUSES: tuple[str, ...] = ("succeeded", "nothing_to_compile", "failed")

# Tool names per workspace dictionary; the first of each is the default.
DICTIONARY_CHOICES: dict[str, tuple[str, ...]] = {
    "commitments": ("Commitments", "Subcontracts"),
    "invoicing": ("Invoicing", "Progress Billings"),
    "subcontractor": ("Subcontractor", "Trade Partner"),
}


def default_dictionary() -> dict[str, str]:
    """The dictionary of a project nobody configured: the first name of each tool."""
    return {tool: names[0] for tool, names in DICTIONARY_CHOICES.items()}


def normalize_email(email: str) -> str:
    """The lookup form of an e-mail address (`ProjectUser.email_lower`)."""
    return email.strip().lower()


class Project(Model):
    """A Procore project, with its company and our per-project settings.

    `source` is where its data last came from (``bundle`` or ``procore``); `synced_at` when
    (the snapshot's time), `full_synced_at` the time of the last complete snapshot (what an
    incremental sync cannot see, deletions, is caught by the next complete one);
    `unreachable_reason` is set when the live source cannot read the project (one line for the
    Procore admin) and cleared by the next successful apply.
    """

    id = fields.BigIntField(primary_key=True, generated=False)
    name = fields.CharField(max_length=255)
    project_number = fields.CharField(max_length=100, default="", db_index=True)
    company_id = fields.BigIntField()
    company_name = fields.CharField(max_length=255)
    invoice_contacts_may_compile = fields.BooleanField(default=False)
    # Leave an invoice out of a backup when its numbers do not tie out (else only report it).
    tie_out_blocks = fields.BooleanField(default=False, db_default=False)
    dictionary: Any = fields.JSONField(default=default_dictionary)
    source = fields.CharField(max_length=16, default="bundle", db_default="bundle")
    synced_at = fields.DatetimeField(null=True)
    full_synced_at = fields.DatetimeField(null=True)
    unreachable_reason = fields.TextField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "projects"

    def __str__(self) -> str:
        return f"{self.name} ({self.project_number})"

    def names(self) -> dict[str, str]:
        """The project's dictionary: its names for the Commitments and Invoicing tools and for
        subcontractors (`DICTIONARY_CHOICES` keys), the defaults where it chose none."""
        names = default_dictionary()
        names.update({key: str(value) for key, value in (self.dictionary or {}).items() if value})
        return names


class BillingPeriod(Model):
    """A billing period of a project; at most one is `open`."""

    id = fields.BigIntField(primary_key=True, generated=False)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="billing_periods", on_delete=fields.CASCADE
    )
    position = fields.IntField()
    start_date = fields.DateField()
    end_date = fields.DateField()
    due_date = fields.DateField(null=True)
    status = fields.CharField(max_length=16)

    project_id: int

    class Meta:
        table = "billing_periods"
        indexes = (("project_id", "position"),)


class Commitment(Model):
    """A commitment (subcontract) of a project; `private` ones are seen by admins and
    `private_list` only. `invoice_contacts`: [{id, name, email}]; `private_list`: [{id, email}].
    `private_list_known` False: the source could not read the private list (stored as []), so
    nobody may see or compile the commitment until it can be read (fail closed).
    """

    id = fields.BigIntField(primary_key=True, generated=False)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="commitments", on_delete=fields.CASCADE
    )
    number = fields.CharField(max_length=100)
    title = fields.CharField(max_length=500, default="")
    status = fields.CharField(max_length=64, default="")
    executed = fields.BooleanField(default=False)
    private = fields.BooleanField(default=False)
    vendor_id = fields.BigIntField(null=True)
    vendor_name = fields.CharField(max_length=255, default="")
    invoice_contacts: Any = fields.JSONField(default=list)
    private_list: Any = fields.JSONField(default=list)
    private_list_known = fields.BooleanField(default=True, db_default=True)

    project_id: int

    class Meta:
        table = "commitments"
        indexes = (("project_id", "number"),)


class ProjectUser(Model):
    """A person in a project's directory, with their access to the Commitments tool.

    `email_address` is kept as Procore sent it; look people up by `email_lower`.
    `access_known` False: the source could not determine the Commitments level, which is then
    stored as ``none`` (fail closed).
    """

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="users", on_delete=fields.CASCADE
    )
    user_id = fields.BigIntField()
    name = fields.CharField(max_length=255, default="")
    email_address = fields.CharField(max_length=320, default="")
    email_lower = fields.CharField(max_length=320, default="", db_index=True)
    is_active = fields.BooleanField(default=True)
    vendor_id = fields.BigIntField(null=True)
    vendor_name = fields.CharField(max_length=255, null=True)
    commitments_access = fields.CharField(max_length=16, default="none")
    access_known = fields.BooleanField(default=True, db_default=True)

    project_id: int

    class Meta:
        table = "project_users"
        unique_together = (("project", "user_id"),)


class Invoice(Model):
    """A subcontractor invoice (Procore requisition).

    `period_id` is deliberately not a foreign key: it may name a period that does not exist,
    which the compile step reports. `current_payment_due` is `summary["current_payment_due"]`
    parsed as Decimal; `summary` keeps Procore's strings as given.

    `source_updated_at` is the source's own ``updated_at`` (None for bundles).
    `detail_updated_at` is the `source_updated_at` at which `items`/`summary_text` were last
    read (for a bundle, the time they were imported); None: never read (the Procore source reads
    an invoice's detail lazily). The detail is stale when it differs from `source_updated_at`.
    """

    id = fields.BigIntField(primary_key=True, generated=False)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="invoices", on_delete=fields.CASCADE
    )
    commitment: fields.ForeignKeyRelation[Commitment] = fields.ForeignKeyField(
        "models.Commitment", related_name="invoices", on_delete=fields.CASCADE
    )
    number = fields.IntField()
    invoice_number = fields.CharField(max_length=100, null=True)
    period_id = fields.BigIntField()
    requisition_start = fields.DateField(null=True)
    requisition_end = fields.DateField(null=True)
    billing_date = fields.DateField(null=True)
    status = fields.CharField(max_length=32)
    summary: Any = fields.JSONField(default=dict)
    summary_text: Any = fields.JSONField(default=dict)
    items: Any = fields.JSONField(default=list)
    current_payment_due = fields.DecimalField(max_digits=16, decimal_places=2)
    signed_pdf_filename = fields.CharField(max_length=255, null=True)
    signed_pdf_sha256 = fields.CharField(max_length=64, null=True)
    source_updated_at = fields.DatetimeField(null=True)
    detail_updated_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    project_id: int
    commitment_id: int
    attachments: fields.ReverseRelation[Attachment]

    class Meta:
        table = "invoices"
        indexes = (("project_id", "commitment_id"), ("project_id", "period_id"))


class Attachment(Model):
    """A file attached to an invoice; its bytes are the blob `sha256` (None, with `byte_size`:
    a Procore file not downloaded yet)."""

    id = fields.BigIntField(primary_key=True, generated=False)
    invoice: fields.ForeignKeyRelation[Invoice] = fields.ForeignKeyField(
        "models.Invoice", related_name="attachments", on_delete=fields.CASCADE
    )
    position = fields.IntField()
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=255, default="")
    sha256 = fields.CharField(max_length=64, null=True)
    byte_size = fields.BigIntField(null=True)

    invoice_id: int

    class Meta:
        table = "attachments"
        indexes = (("invoice_id", "position"),)


class Backup(Model):
    """A compile request and its outcome.

    `requested_by`: a Slack user id, an e-mail or ``cli:<user>``. `excluded`: [{invoice_id,
    period_id, reason}]. `file_name`/`file_path` (relative to the data dir) are None when no
    PDF was written.
    """

    id = fields.IntField(primary_key=True)
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="backups", on_delete=fields.CASCADE
    )
    requested_by = fields.CharField(max_length=255)
    requested_at = fields.DatetimeField()
    invoice_ids: Any = fields.JSONField(default=list)
    excluded: Any = fields.JSONField(default=list)
    page_count = fields.IntField(default=0)
    byte_size = fields.BigIntField(default=0)
    file_name = fields.CharField(max_length=500, null=True)
    file_path = fields.CharField(max_length=1000, null=True)
    warnings: Any = fields.JSONField(default=list)
    status = fields.CharField(max_length=32)

    project_id: int

    class Meta:
        table = "backups"
        indexes = (("project_id", "requested_at"),)
