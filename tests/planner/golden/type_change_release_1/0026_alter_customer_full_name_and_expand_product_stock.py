# plan_zero_downtime shop: release 1 of 2, migration 1 of 4 in this release (change,
# expand).
#
# Unchanged: Alter field full_name on customer.
#
# Add shop_product.stock__new bigint, kept in step by a trigger.
#   shop_product.stock changes type integer -> bigint: ALTER COLUMN TYPE would rewrite
#   shop_product and rebuild its indexes under ACCESS EXCLUSIVE. Expand/contract
#   instead, step 1: stock__new (bigint) is added nullable (catalog-only) and a
#   trigger fills it from stock on every INSERT and UPDATE, so the previous release's
#   writes are copied. CHECK (stock__new IS NOT NULL) NOT VALID holds new rows to it
#   without a scan. Django's state does not change yet.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations, models


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
        migrations.AlterField(
            model_name='customer',
            name='full_name',
            field=models.CharField(max_length=200),
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
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
