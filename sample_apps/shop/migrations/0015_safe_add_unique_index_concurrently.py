"""SAFE counterpart of add-unique-constraint, step 1 of 2: CREATE UNIQUE INDEX CONCURRENTLY.

The unique index is built while shop_customer stays readable and writable; it cannot run
in a transaction, hence ``atomic = False``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("shop", "0014_hazard_alter_field_unique"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS shop_customer_email_uniq "
                "ON shop_customer (email)"
            ),
            # Also a no-op once 0016's constraint has been dropped together with the index.
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS shop_customer_email_uniq",
        ),
    ]
