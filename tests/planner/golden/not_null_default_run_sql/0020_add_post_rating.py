# plan_zero_downtime blog: release 1, migration 1 of 1 in this release (expand).
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
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

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
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
