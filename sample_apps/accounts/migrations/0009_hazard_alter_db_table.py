"""HAZARD alter-db-table: AlterModelTable renames accounts_profile to accounts_user_profile.

The rename needs an ACCESS EXCLUSIVE lock and breaks the previous release, which still
reads and writes accounts_profile.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_hazard_rename_model"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="profile",
            table="accounts_user_profile",
        ),
    ]
