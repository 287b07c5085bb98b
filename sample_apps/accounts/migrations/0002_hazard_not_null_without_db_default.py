"""HAZARD not-null-without-db-default: a NOT NULL column whose default only lives in Python.

Django adds the column with DEFAULT 0 and drops that DEFAULT in the same migration, so the
previous release (which does not know the column) fails on every INSERT into accounts_user.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="login_count",
            field=models.IntegerField(default=0, verbose_name="number of logins"),
        ),
    ]
