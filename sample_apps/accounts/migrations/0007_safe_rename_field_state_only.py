"""SAFE counterpart of rename-field: rename the attribute in Django's state only.

The model keeps the old column through ``db_column="phone"``, so no SQL runs at all and
the previous release (which still uses ``phone``) keeps working.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_hazard_rename_field"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="profile",
                    name="phone",
                    field=models.CharField(blank=True, db_column="phone", max_length=32),
                ),
                migrations.RenameField(
                    model_name="profile",
                    old_name="phone",
                    new_name="phone_number",
                ),
            ],
            database_operations=[],
        ),
    ]
