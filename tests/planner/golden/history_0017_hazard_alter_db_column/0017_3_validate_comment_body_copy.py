# plan_zero_downtime blog: release 1 of 2, migration 3 of 4 in this release (enforce).
# Replaces blog.0017_hazard_alter_db_column.
#
# Validate CHECK (content IS NOT NULL) on blog_comment.
#   VALIDATE CONSTRAINT checks that no row of blog_comment has content NULL, under
#   SHARE UPDATE EXCLUSIVE: reads and writes go on. In its own transaction.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0017_2_copy_comment_body'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "blog_comment" VALIDATE CONSTRAINT "blog_comment_content_not_null"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
