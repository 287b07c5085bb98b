# plan_zero_downtime shop: release 1, migration 7 of 8 in this release (build).
#
# Build the unique index shop_product_name_price_uniq on shop_product CONCURRENTLY.
#   ADD CONSTRAINT ... UNIQUE would build its index under ACCESS EXCLUSIVE: nobody
#   could read or write shop_product meanwhile. The unique index
#   shop_product_name_price_uniq is built first with CREATE UNIQUE INDEX CONCURRENTLY
#   (SHARE UPDATE EXCLUSIVE: reads and writes go on). It cannot run in a transaction,
#   hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_product_name_price_uniq"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('shop', '0031_validate_shop_product_stock_max'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "shop_product_name_price_uniq" ON "shop_product" ("name", "price")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_product_name_price_uniq"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_product_name_price_uniq" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_price_uniq"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_price_uniq"',
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
