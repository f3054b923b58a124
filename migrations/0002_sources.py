from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name='Attachment',
            options={'table': 'attachments', 'app': 'models', 'indexes': [Index(fields=['invoice_id', 'position'])], 'pk_attr': 'id', 'table_description': 'A file attached to an invoice; its bytes are the blob `sha256` (None, with `byte_size`:'},
        ),
        ops.AlterField(
            model_name='Attachment',
            name='byte_size',
            field=fields.BigIntField(null=True),
        ),
        ops.AlterField(
            model_name='Attachment',
            name='sha256',
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name='Commitment',
            name='private_list_known',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='Invoice',
            name='detail_updated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Invoice',
            name='source_updated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Project',
            name='full_synced_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Project',
            name='source',
            field=fields.CharField(default='bundle', db_default='bundle', max_length=16),
        ),
        ops.AddField(
            model_name='Project',
            name='synced_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Project',
            name='unreachable_reason',
            field=fields.TextField(null=True, unique=False),
        ),
        ops.AddField(
            model_name='ProjectUser',
            name='access_known',
            field=fields.BooleanField(default=True, db_default=True),
        ),
    ]
