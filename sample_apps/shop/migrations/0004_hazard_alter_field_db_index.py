"""HAZARD add-index-non-concurrent: ``db_index=True`` added to an existing column via AlterField.

Django emits a plain CREATE INDEX on shop_order: SHARE lock, writes blocked for the build.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0003_safe_add_index_concurrently"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="updated_at",
            field=models.DateTimeField(auto_now=True, db_index=True),
        ),
    ]
