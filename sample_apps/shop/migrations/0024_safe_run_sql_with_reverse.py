"""SAFE counterpart of run-sql-no-reverse: RunSQL with a reverse_sql that undoes it.

COMMENT ON is a catalog-only change, and the migration can be unapplied.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0023_hazard_lock_table"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "COMMENT ON COLUMN shop_order.payment_reference IS "
                "'Identifier of the payment at the payment provider.'"
            ),
            reverse_sql="COMMENT ON COLUMN shop_order.payment_reference IS NULL",
        ),
    ]
