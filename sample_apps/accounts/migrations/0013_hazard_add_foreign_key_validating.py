"""HAZARD add-foreign-key-validating: a FOREIGN KEY added to an existing column, validated at once.

Turning db_constraint back on makes Django run ALTER TABLE ... ADD CONSTRAINT ...
FOREIGN KEY without NOT VALID: PostgreSQL holds SHARE ROW EXCLUSIVE on both
accounts_user_profile and accounts_user while it checks every row, so writes to
both tables wait for the whole scan.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0012_safe_add_column_for_foreign_key"),
    ]

    operations = [
        migrations.AlterField(
            model_name="profile",
            name="invited_by",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="invitees",
                to=settings.AUTH_USER_MODEL,
                verbose_name="invited by",
            ),
        ),
    ]
