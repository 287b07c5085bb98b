"""HAZARD drop-index-non-concurrent: RemoveIndex on the existing shop_order table.

DROP INDEX without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on shop_order: it waits
behind long transactions and blocks every query queued behind it, reads included.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0004_hazard_alter_field_db_index"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="order",
            name="shop_order_created_at_idx",
        ),
    ]
