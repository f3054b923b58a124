"""Project.tie_out_blocks: leave out invoices whose numbers do not tie out (default: no)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_sources')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Project',
            name='tie_out_blocks',
            field=fields.BooleanField(default=False, db_default=False),
        ),
    ]
