from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_webhook_deliveries')]

    initial = False

    operations = [
        ops.AddField(
            model_name='WebhookResource',
            name='pending_since',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
