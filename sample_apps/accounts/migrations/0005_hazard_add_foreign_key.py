"""HAZARD add-foreign-key-validating + add-index-non-concurrent: a ForeignKey added to an existing table.

Django validates the new FOREIGN KEY at once (SHARE ROW EXCLUSIVE on accounts_profile and
accounts_user while both are scanned) and builds its index without CONCURRENTLY (SHARE lock:
writes to accounts_profile block for the whole build).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_safe_add_nullable_column"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="referred_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="referrals",
                to=settings.AUTH_USER_MODEL,
                verbose_name="referred by",
            ),
        ),
    ]
