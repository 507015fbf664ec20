"""A consultation's data key is a WrappedKey like a conversation's or a handover's: re-wrapped
by `manage.py rewrap_keys` (key rotation), with `destroyed_at` like the others."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("handover", "0003_consent_do_nothing"),
    ]

    operations = [
        migrations.RenameField(
            model_name="consultation",
            old_name="wrapped_key",
            new_name="wrapped",
        ),
        migrations.AddField(
            model_name="consultation",
            name="destroyed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
