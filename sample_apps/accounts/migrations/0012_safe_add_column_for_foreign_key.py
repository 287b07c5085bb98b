"""SAFE: a nullable column for a foreign key, with no constraint and no index yet.

``db_constraint=False, db_index=False``: PostgreSQL only adds a nullable column, a
brief ACCESS EXCLUSIVE on accounts_user_profile with no scan. The constraint comes
next (0013 shows the hazardous way to add it; NOT VALID then VALIDATE is the safe one).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0011_hazard_run_python_no_reverse"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="invited_by",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="invitees",
                to=settings.AUTH_USER_MODEL,
                verbose_name="invited by",
            ),
        ),
    ]
