"""HAZARD add-index-non-concurrent: AddIndex on the existing, busy shop_order table.

CREATE INDEX without CONCURRENTLY holds a SHARE lock for the whole build: every INSERT,
UPDATE and DELETE on shop_order waits until the index is built.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["status", "created_at"], name="shop_order_status_created_idx"),
        ),
    ]
