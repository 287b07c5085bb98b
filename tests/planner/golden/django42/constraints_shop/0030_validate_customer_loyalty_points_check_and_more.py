# plan_zero_downtime shop: release 1, migration 5 of 8 in this release (enforce,
# expand).
#
# Validate the CHECK constraint shop_customer_loyalty_points_check.
#   VALIDATE CONSTRAINT shop_customer_loyalty_points_check checks the existing rows of
#   shop_customer under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Validate the foreign key shop_customer_referrer_id_6dbd1ed5_fk_shop_customer_id.
#   VALIDATE CONSTRAINT checks the existing rows of shop_customer under SHARE UPDATE
#   EXCLUSIVE (and ROW SHARE on shop_customer): reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Validate the CHECK constraint shop_product_stock_check.
#   VALIDATE CONSTRAINT shop_product_stock_check checks the existing rows of
#   shop_product under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Add the CHECK constraint shop_product_stock_max on shop_product NOT VALID.
#   ADD CONSTRAINT shop_product_stock_max CHECK scans shop_product under ACCESS
#   EXCLUSIVE: nobody reads or writes it meanwhile. Added NOT VALID, the constraint is
#   enforced for new and updated rows at once, without the scan; the lock lasts
#   milliseconds. Django's state gets the constraint here.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0029_customer_code_unique'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_customer" VALIDATE CONSTRAINT "shop_customer_loyalty_points_check"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_customer" VALIDATE CONSTRAINT "shop_customer_referrer_id_6dbd1ed5_fk_shop_customer_id"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "shop_product" VALIDATE CONSTRAINT "shop_product_stock_check"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name='product',
                    constraint=models.CheckConstraint(check=models.Q(('stock__lte', 100000)), name='shop_product_stock_max'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_stock_max" CHECK ("stock" <= 100000) NOT VALID',
                    reverse_sql='ALTER TABLE "shop_product" DROP CONSTRAINT "shop_product_stock_max"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
