"""SAFE counterpart of drop-index-non-concurrent: RemoveIndexConcurrently (non-atomic migration).

DROP INDEX CONCURRENTLY waits for running transactions instead of locking them out, so
shop_product stays readable and writable. It cannot run in a transaction: ``atomic = False``.
"""

from django.contrib.postgres.operations import RemoveIndexConcurrently
from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0005_hazard_remove_index"),
    ]

    operations = [
        RemoveIndexConcurrently(
            model_name="product",
            name="shop_product_active_idx",
        ),
    ]
