# plan_zero_downtime shop: release 1 of 2, migration 3 of 4 in this release (enforce).
# Replaces shop.0026_hazard_type_and_table.
#
# Validate CHECK (stock__new IS NOT NULL) on shop_product.
#   VALIDATE CONSTRAINT checks that no row of shop_product has stock__new NULL, under
#   SHARE UPDATE EXCLUSIVE: reads and writes go on. In its own transaction.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0027_copy_product_stock'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_product" VALIDATE CONSTRAINT "shop_product_stock__new_not_null"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
