# plan_zero_downtime shop: release 2 of 2, migration 1 of 1 in this release
# (contract).
# Ship only after release 1 (0026_alter_customer_full_name_and_expand_product_stock,
# 0027_copy_product_stock, 0028_validate_product_stock_copy,
# 0029_switch_product_stock) is deployed everywhere.
#
# Drop the old column shop_product.stock__old.
#   Release 1 runs everywhere: the old integer column of shop_product.stock is not
#   read or written by anyone. DROP COLUMN is catalog-only, ACCESS EXCLUSIVE for
#   milliseconds.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0029_switch_product_stock'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The reverse restores the column; the switch's reverse refills it.
        # The code left this column in the previous release (the switch): no running release uses it.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_product" DROP COLUMN IF EXISTS "stock__old"',
            reverse_sql='ALTER TABLE "shop_product" ADD COLUMN IF NOT EXISTS "stock__old" integer NULL',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
