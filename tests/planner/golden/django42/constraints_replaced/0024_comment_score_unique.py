# plan_zero_downtime blog: release 1, migration 5 of 5 in this release (enforce).
# Replaces blog.0020_hazard_constraints.
#
# ADD CONSTRAINT blog_comment_score_3b5eaad0_uniq UNIQUE USING INDEX on blog_comment.
#   ADD CONSTRAINT ... UNIQUE USING INDEX turns the index built by the previous
#   migration into the constraint: catalog-only, ACCESS EXCLUSIVE on blog_comment for
#   milliseconds, no scan and no build.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0023_comment_score_unique_index'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_comment" ADD CONSTRAINT "blog_comment_score_3b5eaad0_uniq" UNIQUE USING INDEX "blog_comment_score_3b5eaad0_uniq"',
            reverse_sql='ALTER TABLE "blog_comment" DROP CONSTRAINT "blog_comment_score_3b5eaad0_uniq"',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
