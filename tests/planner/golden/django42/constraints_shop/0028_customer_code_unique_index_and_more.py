# plan_zero_downtime shop: release 1, migration 3 of 8 in this release (build).
#
# Build the unique index of shop_customer.code CONCURRENTLY.
#   ADD CONSTRAINT ... UNIQUE would build its index under ACCESS EXCLUSIVE: nobody
#   could read or write shop_customer meanwhile. The unique index
#   shop_customer_code_a46664c8_uniq is built first with CREATE UNIQUE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on). It cannot run in a
#   transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_customer_code_a46664c8_uniq"; DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_customer_code_a46664c8_like"; then migrate again.
#
# Build the index of shop_customer.referrer_id CONCURRENTLY.
#   The foreign key's index shop_customer_referrer_id_6dbd1ed5 (the name Django gives
#   it) is built with CREATE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and
#   writes of shop_customer go on. It cannot run in a transaction, hence atomic =
#   False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_customer_referrer_id_6dbd1ed5"; then migrate again.
#
# Build the index of shop_product.barcode CONCURRENTLY.
#   db_index on shop_product.barcode: the index is built with CREATE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on) under the name
#   Django gives it (shop_product_barcode_d5b8e4af,
#   shop_product_barcode_d5b8e4af_like), so that later migrations find it. It cannot
#   run in a transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_product_barcode_d5b8e4af"; DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_product_barcode_d5b8e4af_like"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('shop', '0027_add_customer_code_and_more'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "shop_customer_code_a46664c8_uniq" ON "shop_customer" ("code")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_customer_code_a46664c8_uniq"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_customer_code_a46664c8_uniq" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_code_a46664c8_uniq"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_code_a46664c8_uniq"',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_customer_code_a46664c8_like" ON "shop_customer" ("code" varchar_pattern_ops)',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_customer_code_a46664c8_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_customer_code_a46664c8_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_code_a46664c8_like"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_code_a46664c8_like"',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_customer_referrer_id_6dbd1ed5" ON "shop_customer" ("referrer_id")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_customer_referrer_id_6dbd1ed5"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_customer_referrer_id_6dbd1ed5" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_referrer_id_6dbd1ed5"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_referrer_id_6dbd1ed5"',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_product_barcode_d5b8e4af" ON "shop_product" ("barcode")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_product_barcode_d5b8e4af"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_product_barcode_d5b8e4af" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_product_barcode_d5b8e4af"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_product_barcode_d5b8e4af"',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_product_barcode_d5b8e4af_like" ON "shop_product" ("barcode" varchar_pattern_ops)',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_product_barcode_d5b8e4af_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_product_barcode_d5b8e4af_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_product_barcode_d5b8e4af_like"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_product_barcode_d5b8e4af_like"',
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
