# plan_zero_downtime blog: release 1, migration 2 of 4 in this release (backfill).
#
# Backfill blog_post.token in batches.
#   Fills blog_post.token for existing rows, computed by PostgreSQL: one UPDATE per
#   primary key range, each in its own transaction holding its row locks about 100 ms.
#   Not atomic on purpose: one long transaction would hold row locks on the whole
#   table and bloat it.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

import sys
import time
from django.db import migrations, transaction


#: Rows in the first batch of a backfill (plan_zero_downtime --batch-size); later batches
#: are sized so that each takes about BATCH_SECONDS.
BATCH_SIZE = 1000
#: How long one batch may hold its row locks, in seconds.
BATCH_SECONDS = 0.1
#: Pause between batches, in seconds (give replicas or a busy table some air).
PAUSE_SECONDS = 0


def backfill_in_batches(connection, table, key, assignment, todo, params=()):
    """UPDATE table SET assignment WHERE todo, one range of the primary key at a time.

    Each batch is one UPDATE of the next rows after the previous batch in key order
    (keyset: found through the primary key index, never OFFSET), in its own short
    transaction, so its row locks last about BATCH_SECONDS: the batch size adapts
    to that. Only rows matching todo are written, so run again after an
    interruption it skips what is done. Progress goes to stderr.
    """
    quote = connection.ops.quote_name
    name = quote(table)
    columns = ', '.join(quote(column) for column in key)
    descending = ', '.join(f'{quote(column)} DESC' for column in key)
    marks = ', '.join(['%s'] * len(key))
    size, last, done = BATCH_SIZE, None, 0
    started = reported = time.monotonic()
    while True:
        after = 'TRUE' if last is None else f'({columns}) > ({marks})'
        lower = [] if last is None else list(last)
        statement = (
            f'WITH bound AS (SELECT {columns} FROM (SELECT {columns} FROM {name} '
            f'WHERE {after} ORDER BY {columns} LIMIT %s) AS batch '
            f'ORDER BY {descending} LIMIT 1), '
            f'changed AS (UPDATE {name} SET {assignment} WHERE {after} '
            f'AND ({columns}) <= (SELECT {columns} FROM bound) AND ({todo}) RETURNING 1) '
            f'SELECT {columns}, (SELECT count(*) FROM changed) FROM bound'
        )
        began = time.monotonic()
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(statement, [*lower, size, *params, *lower])
            row = cursor.fetchone()
        took = time.monotonic() - began
        if row is None:
            break
        last, done = row[:-1], done + row[-1]
        size = max(1, min(size * 3 // 2 + 1, int(size * BATCH_SECONDS / max(took, 0.001))))
        if time.monotonic() - reported >= 5:
            reported = time.monotonic()
            sys.stderr.write(f'  {table}: {done} rows so far\n')
        if PAUSE_SECONDS:
            time.sleep(PAUSE_SECONDS)
    seconds = time.monotonic() - started
    sys.stderr.write(f'  {table}: {done} rows backfilled in {seconds:.1f}s\n')


def backfill_post_token(apps, schema_editor):
    """Fill blog_post.token for existing rows that have no value yet."""
    backfill_in_batches(
        schema_editor.connection,
        table='blog_post',
        key=['id'],
        assignment='"token" = DEFAULT',
        todo='"token" IS NULL',
    )


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
