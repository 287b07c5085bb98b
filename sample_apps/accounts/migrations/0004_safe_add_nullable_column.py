"""SAFE counterpart of not-null-without-db-default: a nullable column without default.

Adding a NULL column is a catalog-only change: the ACCESS EXCLUSIVE lock is held for
milliseconds and the previous release keeps inserting rows (the column is left NULL).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_safe_not_null_with_db_default"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="last_login_ip",
            field=models.GenericIPAddressField(
                blank=True, null=True, verbose_name="IP address of the last login"
            ),
        ),
    ]
