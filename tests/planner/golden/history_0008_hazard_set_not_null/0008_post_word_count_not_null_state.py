# plan_zero_downtime blog: release 1 of 2, migration 1 of 1 in this release (change).
# Replaces blog.0008_hazard_set_not_null (same dependencies).
#
# Django's state: Post.word_count NOT NULL (the database follows in the next release).
#   The model says word_count is NOT NULL, but the previous release still writes NULL
#   into blog_post.word_count (it was nullable there, and Django inserts every field).
#   Django's state changes now, without SQL; NOT NULL is enforced in the database by
#   the next release, once the previous one is gone.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.
#
# Release 2 is pending (blog/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime blog` to write it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0007_2_post_unique_together"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # No SQL.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='post',
                    name='word_count',
                    field=models.IntegerField(editable=False),
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
