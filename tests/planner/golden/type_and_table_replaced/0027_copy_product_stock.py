# plan_zero_downtime shop: release 1 of 2, migration 2 of 4 in this release
# (backfill).
# Replaces shop.0026_hazard_type_and_table.
#
# Copy shop_product.stock into stock__new in batches of 1000.
#   Copies stock into stock__new for existing rows, 1000 rows per transaction in
#   primary key order (the trigger takes care of rows written meanwhile). Not atomic
#   on purpose: one long transaction would hold row locks on the whole table.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

import time
from django.db import migrations, transaction


#: Rows per transaction of the backfill (plan_zero_downtime --batch-size).
BATCH_SIZE = 1000


def copy_product_stock(apps, schema_editor):
    """Fill shop_product.stock__new for existing rows.

    Batches of BATCH_SIZE rows in primary key order, each in its own short
    transaction: row locks last milliseconds and no table lock is held. Rows that
    already have a value are left alone, so it can run again after an interruption.
    """
    Product = apps.get_model('shop', 'Product')
    db = schema_editor.connection.alias
    rows = Product._base_manager.using(db)
    last_pk = None
    done = 0
    reported = time.monotonic()
    while True:
        batch = rows.order_by('pk')
        if last_pk is not None:
            batch = batch.filter(pk__gt=last_pk)
        pks = list(batch.values_list('pk', flat=True)[:BATCH_SIZE])
        if not pks:
            break
        with transaction.atomic(using=db), schema_editor.connection.cursor() as cursor:
            cursor.execute(
                'UPDATE "shop_product" SET "stock__new" = "stock"::bigint WHERE "id" = ANY(%s) AND "stock__new" IS DISTINCT FROM "stock"::bigint',
                [pks],
            )
            done += cursor.rowcount
        last_pk = pks[-1]
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print(f'  shop_product.stock__new: {done} rows backfilled so far (pk <= {last_pk})')
    print(f'  shop_product.stock__new: {done} rows backfilled')


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('shop', '0026_expand_product_stock_and_rename_table_shop_orderitem'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunPython(
            code=copy_product_stock,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
