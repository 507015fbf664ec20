# Warm handover: an active conversation may be led by the partner it was passed to, instead of
# a staff member (youthhub.handover.services.handover_chat_pass).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_youth_block"),
        ("handover", "0005_handover_chat_pass"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="led_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="handover.handover",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="conversation",
            name="active_conversation_has_staff",
        ),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("state", "active"),
                    _negated=True,
                )
                | models.Q(("assigned_staff__isnull", False))
                | models.Q(("led_by__isnull", False)),
                name="active_conversation_has_a_helper",
            ),
        ),
        migrations.AddConstraint(
            model_name="conversation",
            constraint=models.CheckConstraint(
                condition=models.Q(("assigned_staff__isnull", True))
                | models.Q(("led_by__isnull", True)),
                name="partner_led_conversation_has_no_staff",
            ),
        ),
    ]
