from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_job_kinds')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Schedule',
            name='include_private',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
