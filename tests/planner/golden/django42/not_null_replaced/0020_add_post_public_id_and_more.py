# plan_zero_downtime blog: release 1 of 2, migration 1 of 2 in this release (expand,
# change).
# Replaces blog.0020_hazard_not_null (same dependencies).
#
# Add blog_post.public_id nullable (state: the final NOT NULL field).
#   blog_post.public_id is a new NOT NULL column whose value is computed per row
#   (default=uuid.uuid4). Adding it NOT NULL in one migration would either give every
#   existing row the same value or rewrite blog_post under ACCESS EXCLUSIVE. Step 1:
#   the column is added nullable, a catalog-only change. Django's state already has
#   the final field; the database catches up in the next steps.
#   The database has no default for it, so the previous release's INSERTs (which do
#   not know the column) leave it NULL until that release is gone: NOT NULL is
#   enforced in the next release, after a catch-up backfill.
#
# Add blog_post.rating NOT NULL DEFAULT 3 (the DEFAULT stays).
#   blog_post.rating is a new NOT NULL column. It is added with DEFAULT 3 in the
#   database: with a constant default that is a catalog-only change on PostgreSQL 11+
#   (no table rewrite, no scan), so the ACCESS EXCLUSIVE lock on blog_post lasts
#   milliseconds. The DEFAULT stays in the database (Django's state only knows
#   default=, written with SeparateDatabaseAndState because db_default needs Django
#   5.0+): INSERTs of the previous release, which do not know the column, still
#   succeed.
#
# Django's state: Post.comment_count NOT NULL (the database follows in the next
# release).
#   The model says comment_count is NOT NULL, but the previous release still writes
#   NULL into blog_post.comment_count (it was nullable there, and Django inserts every
#   field). Django's state changes now, without SQL; NOT NULL is enforced in the
#   database by the next release, once the previous one is gone.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

import uuid
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0019_hazard_update_without_where'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='post',
                    name='public_id',
                    field=models.UUIDField(default=uuid.uuid4),
                ),
            ],
            database_operations=[
                # The column alone, nullable: no rewrite, no scan.
                migrations.AddField(
                    model_name='post',
                    name='public_id',
                    field=models.UUIDField(null=True),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='post',
                    name='rating',
                    field=models.IntegerField(default=3, verbose_name='rating'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_post" ADD COLUMN "rating" integer DEFAULT 3 NOT NULL',
                    reverse_sql='ALTER TABLE "blog_post" DROP COLUMN "rating"',
                ),
            ],
        ),
        # No SQL.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='post',
                    name='comment_count',
                    field=models.IntegerField(default=0, editable=False),
                ),
            ],
            database_operations=[],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
