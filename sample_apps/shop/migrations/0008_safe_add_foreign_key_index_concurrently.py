"""SAFE counterpart of add-foreign-key-validating, step 2 of 3: the FK's index, built CONCURRENTLY.

CREATE INDEX CONCURRENTLY lets writes to shop_customer go on; it cannot run in a
transaction, hence ``atomic = False``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0007_safe_add_foreign_key_not_valid"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS shop_customer_account_manager_id_idx "
                "ON shop_customer (account_manager_id)"
            ),
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS shop_customer_account_manager_id_idx",
        ),
    ]
