# plan_zero_downtime shop: release 1 of 2, migration 4 of 4 in this release (switch).
#
# Switch shop_product.stock to bigint (the columns swap names).
#   The switch, catalog-only, ACCESS EXCLUSIVE on shop_product for milliseconds:
#   stock__new SET NOT NULL (no scan: the CHECK is validated), the trigger goes, stock
#   becomes nullable and is renamed stock__old, stock__new is renamed stock. Both
#   releases now read and write the bigint column. Django's state gets the AlterField
#   here. The old column stays until the next release, so that this one can be rolled
#   back: the reverse copies back the rows written since the switch and leaves every
#   other row as it was.
#   The previous release's server-side prepared statements (other services, JDBC,
#   psycopg 3 with prepare_threshold) fail once ("cached plan must not change result
#   type") when stock changes type under them; Django's own client-side cursors do not
#   notice. Plan with --no-column-swap to keep every column's type for the code that
#   uses it.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.
#
# Release 2 is pending (shop/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime shop` to write it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('shop', '0028_validate_product_stock_copy'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The columns swap names in one transaction: stock exists before and after, with the new type.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='product',
                    name='stock',
                    field=models.BigIntegerField(default=0),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "shop_product" ALTER COLUMN "stock__new" SET NOT NULL',
                        'ALTER TABLE "shop_product" DROP CONSTRAINT "shop_product_stock__new_not_null"',
                        'DROP TRIGGER IF EXISTS "shop_product_stock_sync" ON "shop_product"',
                        'DROP FUNCTION IF EXISTS "shop_product_stock_sync"()',
                        'ALTER TABLE "shop_product" ALTER COLUMN "stock" DROP NOT NULL',
                        'ALTER TABLE "shop_product" RENAME COLUMN "stock" TO "stock__old"',
                        'ALTER TABLE "shop_product" RENAME COLUMN "stock__new" TO "stock"',
                    ],
                    reverse_sql=[
                        'ALTER TABLE "shop_product" RENAME COLUMN "stock" TO "stock__new"',
                        'ALTER TABLE "shop_product" RENAME COLUMN "stock__old" TO "stock"',
                        'UPDATE "shop_product" SET "stock" = "stock__new"::integer WHERE "stock__new" IS DISTINCT FROM "stock"::bigint',
                        'ALTER TABLE "shop_product" ALTER COLUMN "stock" SET NOT NULL',
                        'CREATE FUNCTION "shop_product_stock_sync"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW."stock__new" := NEW."stock"::bigint;\n  RETURN NEW;\nEND\n$$',
                        'CREATE TRIGGER "shop_product_stock_sync" BEFORE INSERT OR UPDATE ON "shop_product" FOR EACH ROW EXECUTE FUNCTION "shop_product_stock_sync"()',
                        'ALTER TABLE "shop_product" ALTER COLUMN "stock__new" DROP NOT NULL',
                        'ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_stock__new_not_null" CHECK ("stock__new" IS NOT NULL) NOT VALID',
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
