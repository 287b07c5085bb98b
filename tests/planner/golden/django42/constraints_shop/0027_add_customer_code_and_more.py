# plan_zero_downtime shop: release 1, migration 2 of 8 in this release (expand,
# enforce).
#
# Add shop_customer.code alone (its unique index and constraint follow).
#   The new column is added alone, nullable: a catalog-only change, ACCESS EXCLUSIVE
#   for milliseconds. AddField would also build its unique constraint's index under
#   that ACCESS EXCLUSIVE lock: the index follows, built CONCURRENTLY, and becomes the
#   constraint afterwards.
#
# Add shop_customer.loyalty_points, its CHECK NOT VALID.
#   The column type of shop_customer.loyalty_points brings CHECK ("loyalty_points" >=
#   0): written inline, PostgreSQL would scan shop_customer under ACCESS EXCLUSIVE to
#   check it. The column is added without it, then the CHECK is added NOT VALID: new
#   and updated rows are checked from now on, no scan.
#
# Add shop_customer.referrer_id and its foreign key to shop_customer NOT VALID.
#   A foreign key added in one step scans shop_customer to check every row while it
#   holds SHARE ROW EXCLUSIVE on shop_customer and shop_customer, and builds its index
#   under SHARE: writes to both tables wait. Here shop_customer.referrer_id is added
#   alone, then the constraint NOT VALID: new rows are checked from now on, existing
#   ones are not scanned, and the locks last milliseconds. Django's state gets the
#   ForeignKey now; its index and the validation follow.
#
# Add shop_product.barcode alone (its index follow).
#   The new column is added alone, nullable: a catalog-only change, ACCESS EXCLUSIVE
#   for milliseconds. AddField would also build its index in the same transaction,
#   under SHARE (writes wait for the whole build): the index follows, built
#   CONCURRENTLY.
#
# ADD CONSTRAINT shop_product_name_b8d5e94c_uniq UNIQUE USING INDEX on shop_product.
#   ADD CONSTRAINT ... UNIQUE USING INDEX turns the index built by the previous
#   migration into the constraint: catalog-only, ACCESS EXCLUSIVE on shop_product for
#   milliseconds, no scan and no build. Django's state gets the constraint here.
#
# Add CHECK ("stock" >= 0) on shop_product NOT VALID.
#   The column type of shop_product.stock brings CHECK ("stock" >= 0): written inline,
#   PostgreSQL would scan shop_product under ACCESS EXCLUSIVE to check it. The column
#   is added without it, then the CHECK is added NOT VALID: new and updated rows are
#   checked from now on, no scan.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0026_remove_shop_order_status_created_idx_and_more'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='customer',
                    name='code',
                    field=models.CharField(max_length=20, null=True, unique=True),
                ),
            ],
            database_operations=[
                # The column alone: its unique index and constraint follow.
                migrations.AddField(
                    model_name='customer',
                    name='code',
                    field=models.CharField(max_length=20, null=True),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='customer',
                    name='loyalty_points',
                    field=models.PositiveIntegerField(null=True),
                ),
            ],
            database_operations=[
                # The column without its CHECK: no scan.
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_customer" ADD COLUMN "loyalty_points" integer NULL',
                    reverse_sql='ALTER TABLE "shop_customer" DROP COLUMN "loyalty_points"',
                ),
                # The type's CHECK, for new and updated rows; existing rows later.
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_customer" ADD CONSTRAINT "shop_customer_loyalty_points_check" CHECK ("loyalty_points" >= 0) NOT VALID',
                    reverse_sql='ALTER TABLE "shop_customer" DROP CONSTRAINT "shop_customer_loyalty_points_check"',
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='customer',
                    name='referrer',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='shop.customer'),
                ),
            ],
            database_operations=[
                # The column alone: no constraint, no index yet.
                migrations.AddField(
                    model_name='customer',
                    name='referrer',
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='shop.customer'),
                ),
                # Checked for new rows from now on; existing rows are validated later.
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_customer" ADD CONSTRAINT "shop_customer_referrer_id_6dbd1ed5_fk_shop_customer_id" FOREIGN KEY ("referrer_id") REFERENCES "shop_customer" ("id") DEFERRABLE INITIALLY DEFERRED NOT VALID',
                    reverse_sql='ALTER TABLE "shop_customer" DROP CONSTRAINT "shop_customer_referrer_id_6dbd1ed5_fk_shop_customer_id"',
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='product',
                    name='barcode',
                    field=models.CharField(db_index=True, max_length=40, null=True),
                ),
            ],
            database_operations=[
                # The column alone: its index follow.
                migrations.AddField(
                    model_name='product',
                    name='barcode',
                    field=models.CharField(max_length=40, null=True),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='product',
                    name='name',
                    field=models.CharField(max_length=255, unique=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_name_b8d5e94c_uniq" UNIQUE USING INDEX "shop_product_name_b8d5e94c_uniq"',
                    reverse_sql='ALTER TABLE "shop_product" DROP CONSTRAINT "shop_product_name_b8d5e94c_uniq"',
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='product',
                    name='stock',
                    field=models.PositiveIntegerField(default=0),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_stock_check" CHECK ("stock" >= 0) NOT VALID',
                    reverse_sql='ALTER TABLE "shop_product" DROP CONSTRAINT "shop_product_stock_check"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
