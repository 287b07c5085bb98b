# plan_zero_downtime shop: release 1, migration 6 of 8 in this release (enforce).
#
# Validate the CHECK constraint shop_product_stock_max.
#   VALIDATE CONSTRAINT shop_product_stock_max checks the existing rows of
#   shop_product under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0030_validate_customer_loyalty_points_check_and_more'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_product" VALIDATE CONSTRAINT "shop_product_stock_max"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
