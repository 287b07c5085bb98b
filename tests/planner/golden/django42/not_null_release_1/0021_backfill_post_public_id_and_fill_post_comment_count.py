# plan_zero_downtime blog: release 1 of 2, migration 2 of 2 in this release
# (backfill).
#
# Backfill blog_post.public_id in batches of 1000.
#   Fills blog_post.public_id for existing rows, 1000 rows per transaction in primary
#   key order. Not atomic on purpose: one long transaction would hold row locks on the
#   whole table and bloat it.
#
# Fill NULL blog_post.comment_count with 0.
#   Rows where blog_post.comment_count is NULL get the default (0), 1000 rows per
#   transaction in primary key order. Not atomic on purpose.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.
#
# Release 2 is pending (blog/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime blog` to write it.

import time
from django.db import migrations, transaction


#: Rows per transaction of the backfill (plan_zero_downtime --batch-size).
BATCH_SIZE = 1000


def backfill_post_public_id(apps, schema_editor):
    """Fill blog_post.public_id for existing rows.

    Batches of BATCH_SIZE rows in primary key order, each in its own short
    transaction: row locks last milliseconds and no table lock is held. Rows that
    already have a value are left alone, so it can run again after an interruption.
    """
    Post = apps.get_model('blog', 'Post')
    db = schema_editor.connection.alias
    rows = Post._base_manager.using(db)
    field = Post._meta.get_field('public_id')
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
        with transaction.atomic(using=db):
            todo = list(
                rows.select_for_update()
                .filter(pk__in=pks, public_id__isnull=True)
                .only('pk')
            )
            for row in todo:
                row.public_id = field.get_default()
            rows.bulk_update(todo, ['public_id'])
        done += len(todo)
        last_pk = pks[-1]
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print(f'  blog_post.public_id: {done} rows backfilled so far (pk <= {last_pk})')
    print(f'  blog_post.public_id: {done} rows backfilled')


def fill_post_comment_count(apps, schema_editor):
    """Fill blog_post.comment_count for existing rows.

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
        with transaction.atomic(using=db):
            done += rows.filter(pk__in=pks, comment_count__isnull=True).update(
                comment_count=0
            )
        last_pk = pks[-1]
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print(f'  blog_post.comment_count: {done} rows backfilled so far (pk <= {last_pk})')
    print(f'  blog_post.comment_count: {done} rows backfilled')


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('blog', '0020_add_post_public_id_and_more'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunPython(
            code=backfill_post_public_id,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.RunPython(
            code=fill_post_comment_count,
            reverse_code=migrations.RunPython.noop,
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
