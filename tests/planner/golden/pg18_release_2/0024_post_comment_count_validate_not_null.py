# plan_zero_downtime blog: release 2 of 2, migration 3 of 3 in this release (enforce).
#
# Validate NOT NULL on blog_post.comment_count.
#   VALIDATE CONSTRAINT scans blog_post under SHARE UPDATE EXCLUSIVE only: reads and
#   writes go on while existing rows are checked. Once valid, the column is NOT NULL.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0023_post_comment_count_not_null_not_valid'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" VALIDATE CONSTRAINT "blog_post_comment_count_not_null"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
