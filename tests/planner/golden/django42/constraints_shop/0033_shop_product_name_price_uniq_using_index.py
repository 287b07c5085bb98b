# plan_zero_downtime shop: release 1, migration 8 of 8 in this release (enforce).
#
# ADD CONSTRAINT shop_product_name_price_uniq UNIQUE USING INDEX on shop_product.
#   ADD CONSTRAINT ... UNIQUE USING INDEX turns the index built by the previous
#   migration into the constraint: catalog-only, ACCESS EXCLUSIVE on shop_product for
#   milliseconds, no scan and no build. Django's state gets the constraint here.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0032_shop_product_name_price_uniq_index'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name='product',
                    constraint=models.UniqueConstraint(fields=('name', 'price'), name='shop_product_name_price_uniq'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_name_price_uniq" UNIQUE USING INDEX "shop_product_name_price_uniq"',
                    reverse_sql='ALTER TABLE "shop_product" DROP CONSTRAINT "shop_product_name_price_uniq"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
