"""SAFE counterpart of add-index-non-concurrent: AddIndexConcurrently in a non-atomic migration.

CREATE INDEX CONCURRENTLY only takes a SHARE UPDATE EXCLUSIVE lock, so reads and writes go
on during the build. It cannot run inside a transaction, hence ``atomic = False``.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0002_hazard_add_index_non_concurrent"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["customer", "-created_at"], name="shop_order_customer_recent_idx"),
        ),
    ]
