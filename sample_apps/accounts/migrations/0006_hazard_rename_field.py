"""HAZARD rename-field: RenameField renames the column under the running release.

The rename itself is quick, but the previous release still SELECTs and INSERTs
accounts_profile.bio, which no longer exists: every profile page errors until it is gone.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_hazard_add_foreign_key"),
    ]

    operations = [
        migrations.RenameField(
            model_name="profile",
            old_name="bio",
            new_name="about",
        ),
    ]
