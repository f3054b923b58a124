"""The initial schema: every model as of the first migration.

Written by ``invoice-backups makemigrations``, then edited by hand: tortoise-orm 1.1.9's writer
drops ``generated=False`` from integer primary keys, so the Procore-id keys (Project,
BillingPeriod, Commitment, Invoice, Attachment) say it explicitly here. The writer also imported
live constants from ``storage`` (the job status enum, two field defaults); they are frozen
copies here, so a later change to those constants cannot rewrite this migration's history.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from enum import StrEnum
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index


class JobStatus(StrEnum):
    """`storage.jobs.JobStatus` as of this migration."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def default_dictionary() -> dict[str, str]:
    """`storage.models.default_dictionary()` as of this migration."""
    return {"commitments": "Commitments", "invoicing": "Invoicing", "subcontractor": "Subcontractor"}


def default_statuses() -> list[str]:
    """`storage.schedules.default_statuses()` as of this migration."""
    return ["approved", "approved_as_noted", "pending_owner_approval"]


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ('actor', fields.CharField(max_length=255)),
                ('action', fields.CharField(max_length=64)),
                ('project_id', fields.BigIntField(null=True, db_index=True)),
                ('outcome', fields.CharField(max_length=32)),
                ('details', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'audit_entries', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Who (`actor`: ``slack:U…``, ``cli:…``, ``schedule:N``) did what, when, on which project,'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Job',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(default='compile_backup', max_length=40)),
                ('idempotency_key', fields.CharField(unique=True, max_length=255)),
                ('status', fields.CharEnumField(default=JobStatus.QUEUED, db_index=True, description='QUEUED: queued\nRUNNING: running\nSUCCEEDED: succeeded\nFAILED: failed', enum_type=JobStatus, max_length=16)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('attempts', fields.IntField(default=0)),
                ('lease_owner', fields.CharField(null=True, max_length=120)),
                ('lease_expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('parent_channel', fields.CharField(null=True, max_length=40)),
                ('parent_ts', fields.CharField(null=True, max_length=40)),
                ('delivery_note', fields.TextField(null=True, unique=False)),
                ('pdf_path', fields.TextField(null=True, unique=False)),
                ('result', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('file_id', fields.CharField(null=True, max_length=40)),
                ('final_reply_ts', fields.CharField(null=True, max_length=40)),
                ('error', fields.TextField(null=True, unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'jobs', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One unit of background work, with the steps already done so a resumed run skips them.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Project',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=255)),
                ('project_number', fields.CharField(default='', db_index=True, max_length=100)),
                ('company_id', fields.BigIntField()),
                ('company_name', fields.CharField(max_length=255)),
                ('invoice_contacts_may_compile', fields.BooleanField(default=False)),
                ('dictionary', fields.JSONField(default=default_dictionary, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'projects', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A Procore project, with its company and our per-project settings.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Backup',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='backups', on_delete=OnDelete.CASCADE)),
                ('requested_by', fields.CharField(max_length=255)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('invoice_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('excluded', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('page_count', fields.IntField(default=0)),
                ('byte_size', fields.BigIntField(default=0)),
                ('file_name', fields.CharField(null=True, max_length=500)),
                ('file_path', fields.CharField(null=True, max_length=1000)),
                ('warnings', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('status', fields.CharField(max_length=32)),
            ],
            options={'table': 'backups', 'app': 'models', 'indexes': [Index(fields=['project_id', 'requested_at'])], 'pk_attr': 'id', 'table_description': 'A compile request and its outcome.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='BillingPeriod',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='billing_periods', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('start_date', fields.DateField()),
                ('end_date', fields.DateField()),
                ('due_date', fields.DateField(null=True)),
                ('status', fields.CharField(max_length=16)),
            ],
            options={'table': 'billing_periods', 'app': 'models', 'indexes': [Index(fields=['project_id', 'position'])], 'pk_attr': 'id', 'table_description': 'A billing period of a project; at most one is `open`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Commitment',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='commitments', on_delete=OnDelete.CASCADE)),
                ('number', fields.CharField(max_length=100)),
                ('title', fields.CharField(default='', max_length=500)),
                ('status', fields.CharField(default='', max_length=64)),
                ('executed', fields.BooleanField(default=False)),
                ('private', fields.BooleanField(default=False)),
                ('vendor_id', fields.BigIntField(null=True)),
                ('vendor_name', fields.CharField(default='', max_length=255)),
                ('invoice_contacts', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('private_list', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
            ],
            options={'table': 'commitments', 'app': 'models', 'indexes': [Index(fields=['project_id', 'number'])], 'pk_attr': 'id', 'table_description': 'A commitment (subcontract) of a project; `private` ones are seen by admins and'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Invoice',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.CASCADE)),
                ('commitment', fields.ForeignKeyField('models.Commitment', source_field='commitment_id', db_constraint=True, to_field='id', related_name='invoices', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('invoice_number', fields.CharField(null=True, max_length=100)),
                ('period_id', fields.BigIntField()),
                ('requisition_start', fields.DateField(null=True)),
                ('requisition_end', fields.DateField(null=True)),
                ('billing_date', fields.DateField(null=True)),
                ('status', fields.CharField(max_length=32)),
                ('summary', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('summary_text', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('items', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('current_payment_due', fields.DecimalField(max_digits=16, decimal_places=2)),
                ('signed_pdf_filename', fields.CharField(null=True, max_length=255)),
                ('signed_pdf_sha256', fields.CharField(null=True, max_length=64)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'invoices', 'app': 'models', 'indexes': [Index(fields=['project_id', 'commitment_id']), Index(fields=['project_id', 'period_id'])], 'pk_attr': 'id', 'table_description': 'A subcontractor invoice (Procore requisition).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Attachment',
            fields=[
                ('id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', db_constraint=True, to_field='id', related_name='attachments', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('filename', fields.CharField(max_length=255)),
                ('content_type', fields.CharField(default='', max_length=255)),
                ('sha256', fields.CharField(max_length=64)),
                ('byte_size', fields.BigIntField()),
            ],
            options={'table': 'attachments', 'app': 'models', 'indexes': [Index(fields=['invoice_id', 'position'])], 'pk_attr': 'id', 'table_description': 'A file attached to an invoice; its bytes are the blob `sha256`.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProjectUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='users', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.BigIntField()),
                ('name', fields.CharField(default='', max_length=255)),
                ('email_address', fields.CharField(default='', max_length=320)),
                ('email_lower', fields.CharField(default='', db_index=True, max_length=320)),
                ('is_active', fields.BooleanField(default=True)),
                ('vendor_id', fields.BigIntField(null=True)),
                ('vendor_name', fields.CharField(null=True, max_length=255)),
                ('commitments_access', fields.CharField(default='none', max_length=16)),
            ],
            options={'table': 'project_users', 'app': 'models', 'unique_together': (('project', 'user_id'),), 'pk_attr': 'id', 'table_description': "A person in a project's directory, with their access to the Commitments tool."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Schedule',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='schedules', on_delete=OnDelete.CASCADE)),
                ('owner_key', fields.CharField(max_length=255)),
                ('owner_slack_user_id', fields.CharField(null=True, db_index=True, max_length=32)),
                ('owner_email', fields.CharField(null=True, max_length=320)),
                ('owner_name', fields.CharField(default='', max_length=255)),
                ('channel_id', fields.CharField(max_length=32)),
                ('weekday', fields.IntField()),
                ('time_of_day', fields.CharField(max_length=5)),
                ('timezone', fields.CharField(default='UTC', max_length=64)),
                ('selection', fields.CharField(default='open_period', max_length=16)),
                ('statuses', fields.JSONField(default=default_statuses, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('skip_empty', fields.BooleanField(default=False)),
                ('paused', fields.BooleanField(default=False)),
                ('paused_reason', fields.CharField(null=True, max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'schedules', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Every `weekday` (0 = Monday) at `time_of_day` (``HH:MM``) in `timezone`, compile the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SlackLink',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('slack_user_id', fields.CharField(db_index=True, max_length=32)),
                ('project', fields.ForeignKeyField('models.Project', source_field='project_id', db_constraint=True, to_field='id', related_name='slack_links', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.BigIntField()),
                ('created_by', fields.CharField(max_length=255)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'slack_links', 'app': 'models', 'unique_together': (('slack_user_id', 'project'),), 'pk_attr': 'id', 'table_description': 'Slack user `slack_user_id` is project user `user_id` (a Procore id) on `project`.'},
            bases=['Model'],
        ),
    ]
