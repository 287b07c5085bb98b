# plan_zero_downtime shop: release 1 of 2, migration 1 of 4 in this release (expand).
# Replaces shop.0026_hazard_type_and_table (same dependencies).
#
# Add shop_product.stock__new bigint, kept in step by a trigger.
#   shop_product.stock changes type integer -> bigint: ALTER COLUMN TYPE would rewrite
#   shop_product and rebuild its indexes under ACCESS EXCLUSIVE. Expand/contract
#   instead, step 1: stock__new (bigint) is added nullable (catalog-only) and a
#   trigger fills it from stock on every INSERT and UPDATE, so the previous release's
#   writes are copied. CHECK (stock__new IS NOT NULL) NOT VALID holds new rows to it
#   without a scan. Django's state does not change yet.
#
# Rename the table shop_orderitem to shop_order_line, with a view named
# shop_orderitem.
#   shop_orderitem is renamed shop_order_line (catalog-only, ACCESS EXCLUSIVE for
#   milliseconds) and a view named shop_orderitem takes its place for the previous
#   release: a simple SELECT * view is automatically updatable, so that release's
#   SELECT, INSERT, UPDATE and DELETE keep working through it. Django's state gets the
#   new table name here.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0025_hazard_run_sql_no_reverse'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql=[
                'ALTER TABLE "shop_product" ADD COLUMN "stock__new" bigint NULL',
                'CREATE FUNCTION "shop_product_stock_sync"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW."stock__new" := NEW."stock"::bigint;\n  RETURN NEW;\nEND\n$$',
                'CREATE TRIGGER "shop_product_stock_sync" BEFORE INSERT OR UPDATE ON "shop_product" FOR EACH ROW EXECUTE FUNCTION "shop_product_stock_sync"()',
                'ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_stock__new_not_null" CHECK ("stock__new" IS NOT NULL) NOT VALID',
            ],
            reverse_sql=[
                'DROP TRIGGER IF EXISTS "shop_product_stock_sync" ON "shop_product"',
                'DROP FUNCTION IF EXISTS "shop_product_stock_sync"()',
                'ALTER TABLE "shop_product" DROP COLUMN IF EXISTS "stock__new"',
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable(
                    name='orderitem',
                    table='shop_order_line',
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "shop_orderitem" RENAME TO "shop_order_line"',
                        'CREATE VIEW "shop_orderitem" AS SELECT * FROM "shop_order_line"',
                    ],
                    reverse_sql=[
                        'DROP VIEW IF EXISTS "shop_orderitem"',
                        'ALTER TABLE "shop_order_line" RENAME TO "shop_orderitem"',
                    ],
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
