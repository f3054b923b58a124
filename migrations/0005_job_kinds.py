"""Jobs of any kind: the Slack steps of a job move out of ``jobs`` into a table of their own
(``slack_deliveries``); a job gets a generic ``state`` (a digest's recorded plan moves there from
``payload``) and ``owner_lock`` (the advisory-lock key a live owner holds, on PostgreSQL).

Written by ``invoice-backups makemigrations``, then edited by hand to keep the data of every job
(queued and running ones resume after the upgrade): the steps are stashed in a scratch table
before the old columns go (SQLite rebuilds ``jobs`` to drop a column, and dropping the old table
would cascade into ``slack_deliveries`` if it existed yet), then copied into ``slack_deliveries``.
``state`` stays nullable: SQLite cannot add a NOT NULL column to a table with rows.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

STEP_COLUMNS = "parent_channel, parent_ts, delivery_note, pdf_path, result, file_id, final_reply_ts"


async def stash_job_steps(apps, schema_editor) -> None:
    """Keep each job's Slack steps in ``job_steps_0005``; move a digest's ``plan`` from
    ``payload`` into ``state``; every other job gets an empty ``state``."""
    client = schema_editor.client
    await client.execute_script(
        f"CREATE TABLE job_steps_0005 AS SELECT id AS job_id, {STEP_COLUMNS} FROM jobs"
        " WHERE parent_ts IS NOT NULL OR result IS NOT NULL OR file_id IS NOT NULL"
        " OR final_reply_ts IS NOT NULL OR pdf_path IS NOT NULL"
    )
    if client.capabilities.dialect == "postgres":
        await client.execute_script(
            "UPDATE jobs SET state = jsonb_build_object('plan', payload::jsonb -> 'plan'),"
            " payload = payload::jsonb - 'plan' WHERE payload::jsonb ? 'plan'"
        )
        await client.execute_script("UPDATE jobs SET state = '{}'::jsonb WHERE state IS NULL")
    else:
        await client.execute_script(
            "UPDATE jobs SET state = json_object('plan', json(json_extract(payload, '$.plan'))),"
            " payload = json_remove(payload, '$.plan')"
            " WHERE json_extract(payload, '$.plan') IS NOT NULL"
        )
        await client.execute_script("UPDATE jobs SET state = '{}' WHERE state IS NULL")


async def restore_job_steps(apps, schema_editor) -> None:
    """Copy the stashed steps into ``slack_deliveries``; drop the stash. SQLite: recreate the
    index on ``jobs.status`` that tortoise's table rebuild (to drop the columns) left out."""
    client = schema_editor.client
    await client.execute_script(
        "CREATE INDEX IF NOT EXISTS idx_jobs_status_f35b2b ON jobs (status)"
    )
    await client.execute_script(
        f"INSERT INTO slack_deliveries (job_id, {STEP_COLUMNS})"
        f" SELECT job_id, {STEP_COLUMNS} FROM job_steps_0005 ORDER BY job_id"
    )
    await client.execute_script("DROP TABLE job_steps_0005")


class Migration(migrations.Migration):
    dependencies = [('models', '0003_tie_out_setting')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='Job',
            options={'table': 'jobs', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One unit of background work of some kind, with what its handler did so far.'},
        ),
        ops.AddField(
            model_name='Job',
            name='owner_lock',
            field=fields.BigIntField(null=True),
        ),
        ops.AddField(
            model_name='Job',
            name='state',
            field=fields.JSONField(default=dict, null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.RunPython(stash_job_steps),
        ops.RemoveField(model_name='Job', name='delivery_note'),
        ops.RemoveField(model_name='Job', name='file_id'),
        ops.RemoveField(model_name='Job', name='final_reply_ts'),
        ops.RemoveField(model_name='Job', name='parent_channel'),
        ops.RemoveField(model_name='Job', name='parent_ts'),
        ops.RemoveField(model_name='Job', name='pdf_path'),
        ops.RemoveField(model_name='Job', name='result'),
        ops.CreateModel(
            name='SlackDelivery',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('job', fields.OneToOneField('models.Job', source_field='job_id', db_constraint=True, to_field='id', related_name='slack_delivery', on_delete=OnDelete.CASCADE)),
                ('parent_channel', fields.CharField(null=True, max_length=40)),
                ('parent_ts', fields.CharField(null=True, max_length=40)),
                ('delivery_note', fields.TextField(null=True, unique=False)),
                ('pdf_path', fields.TextField(null=True, unique=False)),
                ('result', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('file_id', fields.CharField(null=True, max_length=40)),
                ('final_reply_ts', fields.CharField(null=True, max_length=40)),
            ],
            options={'table': 'slack_deliveries', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The steps a job already did in Slack, each recorded right after it happened.'},
            bases=['Model'],
        ),
        ops.RunPython(restore_job_steps),
    ]
