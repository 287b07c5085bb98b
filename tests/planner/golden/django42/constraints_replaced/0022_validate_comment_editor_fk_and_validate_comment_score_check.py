# plan_zero_downtime blog: release 1, migration 3 of 5 in this release (enforce).
# Replaces blog.0020_hazard_constraints.
#
# Validate the foreign key blog_comment_editor_id_001446d4_fk_accounts_user_id.
#   VALIDATE CONSTRAINT checks the existing rows of blog_comment under SHARE UPDATE
#   EXCLUSIVE (and ROW SHARE on accounts_user): reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Validate the CHECK constraint blog_comment_score_check.
#   VALIDATE CONSTRAINT blog_comment_score_check checks the existing rows of
#   blog_comment under SHARE UPDATE EXCLUSIVE: reads and writes go on meanwhile. In
#   its own transaction, so no lock taken earlier is held while it scans.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0021_index_comment_editor_and_more'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "blog_comment" VALIDATE CONSTRAINT "blog_comment_editor_id_001446d4_fk_accounts_user_id"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "blog_comment" VALIDATE CONSTRAINT "blog_comment_score_check"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
