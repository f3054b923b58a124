from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_schedule_include_private')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('dedupe_key', fields.CharField(unique=True, max_length=255)),
                ('ulid', fields.CharField(null=True, max_length=64)),
                ('company_id', fields.BigIntField(null=True)),
                ('project_id', fields.BigIntField(null=True)),
                ('resource_name', fields.CharField(max_length=64)),
                ('resource_id', fields.BigIntField()),
                ('event_type', fields.CharField(max_length=16)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('received_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'webhook_deliveries', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A delivery as received (after the checks).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookProject',
            fields=[
                ('project_id', fields.BigIntField(primary_key=True, generated=False, unique=True, db_index=True)),
                ('round', fields.IntField(default=0)),
                ('last_delivery_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_projects', 'app': 'models', 'pk_attr': 'project_id', 'table_description': "A project's re-read passes: ``round`` passes started; the last delivery's time."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WebhookResource',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('project_id', fields.BigIntField()),
                ('kind', fields.CharField(max_length=16)),
                ('resource_id', fields.BigIntField()),
                ('detail', fields.CharField(default='', max_length=40)),
                ('last_event', fields.CharField(default='', max_length=16)),
                ('requested', fields.IntField(default=0)),
                ('claimed', fields.IntField(default=0)),
                ('claimed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('applied', fields.IntField(default=0)),
                ('last_delivery_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'webhook_resources', 'app': 'models', 'unique_together': (('project_id', 'kind', 'resource_id'),), 'pk_attr': 'id', 'table_description': 'One resource deliveries asked to re-read; ``kind`` is ``invoice``, ``commitment`` or'},
            bases=['Model'],
        ),
    ]
