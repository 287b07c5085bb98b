# plan_zero_downtime blog: release 1, migration 2 of 4 in this release (backfill).
#
# Backfill blog_post.token in batches of 1000.
#   Fills blog_post.token for existing rows, 1000 rows per transaction in primary key
#   order. Not atomic on purpose: one long transaction would hold row locks on the
#   whole table and bloat it.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

import time
from django.db import migrations, transaction


#: Rows per transaction of the backfill (plan_zero_downtime --batch-size).
BATCH_SIZE = 1000


def backfill_post_token(apps, schema_editor):
    """Fill blog_post.token for existing rows.

    Batches of BATCH_SIZE rows in primary key order, each in its own short
    transaction: row locks last milliseconds and no table lock is held. Rows that
    already have a value are left alone, so it can run again after an interruption.
    """
    Post = apps.get_model('blog', 'Post')
    db = schema_editor.connection.alias
    rows = Post._base_manager.using(db)
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
                'UPDATE "blog_post" SET "token" = DEFAULT WHERE "id" = ANY(%s) AND "token" IS NULL',
                [pks],
            )
            done += cursor.rowcount
        last_pk = pks[-1]
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print(f'  blog_post.token: {done} rows backfilled so far (pk <= {last_pk})')
    print(f'  blog_post.token: {done} rows backfilled')


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('blog', '0020_add_post_token'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunPython(
            code=backfill_post_token,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
