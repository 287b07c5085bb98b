# plan_zero_downtime shop: release 1, migration 1 of 8 in this release (build).
#
# Drop index shop_order_status_created_idx on shop_order CONCURRENTLY.
#   DROP INDEX would take ACCESS EXCLUSIVE on shop_order, queueing every query behind
#   any long transaction. DROP INDEX CONCURRENTLY waits for the index's users instead
#   and blocks nobody. It cannot run in a transaction, hence atomic = False.
#
# Build the index of shop_customer.phone CONCURRENTLY.
#   db_index on shop_customer.phone: the index is built with CREATE INDEX CONCURRENTLY
#   (SHARE UPDATE EXCLUSIVE: reads and writes go on) under the name Django gives it
#   (shop_customer_phone_d24ce918, shop_customer_phone_d24ce918_like), so that later
#   migrations find it. It cannot run in a transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_customer_phone_d24ce918"; DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_customer_phone_d24ce918_like"; then migrate again.
#
# Build the unique index of shop_product.name CONCURRENTLY.
#   ADD CONSTRAINT ... UNIQUE would build its index under ACCESS EXCLUSIVE: nobody
#   could read or write shop_product meanwhile. The unique index
#   shop_product_name_b8d5e94c_uniq is built first with CREATE UNIQUE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on). It cannot run in a
#   transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_product_name_b8d5e94c_uniq"; DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_product_name_b8d5e94c_like"; then migrate again.
#
# Build index shop_order_total_idx on shop_order CONCURRENTLY.
#   CREATE INDEX would hold SHARE on shop_order for the whole build: every write
#   waits. CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE, which blocks
#   neither reads nor writes; it scans the table twice and waits for transactions
#   older than itself, so it takes longer. It cannot run in a transaction, hence
#   atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "shop_order_total_idx"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('shop', '0025_hazard_run_sql_no_reverse'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveIndex(
                    model_name='order',
                    name='shop_order_status_created_idx',
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_order_status_created_idx"',
                    reverse_sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_order_status_created_idx" ON "shop_order" ("status", "created_at")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_order_status_created_idx"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_order_status_created_idx" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_order_status_created_idx"; then migrate again\'; END IF; END $$',
                    ],
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='customer',
                    name='phone',
                    field=models.CharField(blank=True, db_index=True, max_length=32),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_customer_phone_d24ce918" ON "shop_customer" ("phone")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_customer_phone_d24ce918"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_customer_phone_d24ce918" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_phone_d24ce918"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_phone_d24ce918"',
                ),
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_customer_phone_d24ce918_like" ON "shop_customer" ("phone" varchar_pattern_ops)',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_customer_phone_d24ce918_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_customer_phone_d24ce918_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_phone_d24ce918_like"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_customer_phone_d24ce918_like"',
                ),
            ],
        ),
        migrations.RunSQL(
            sql=[
                'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "shop_product_name_b8d5e94c_uniq" ON "shop_product" ("name")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_product_name_b8d5e94c_uniq"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_product_name_b8d5e94c_uniq" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_b8d5e94c_uniq"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_b8d5e94c_uniq"',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_product_name_b8d5e94c_like" ON "shop_product" ("name" varchar_pattern_ops)',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_product_name_b8d5e94c_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_product_name_b8d5e94c_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_b8d5e94c_like"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_product_name_b8d5e94c_like"',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name='order',
                    index=models.Index(fields=['total'], name='shop_order_total_idx'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "shop_order_total_idx" ON "shop_order" ("total")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"shop_order_total_idx"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "shop_order_total_idx" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "shop_order_total_idx"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "shop_order_total_idx"',
                ),
            ],
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
