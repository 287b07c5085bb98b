# plan_zero_downtime blog: release 1, migration 1 of 2 in this release (change).
# Replaces blog.0011_hazard_run_python_with_ddl (same dependencies).
#
# Unchanged: Add field comment_count to post.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0010_safe_set_not_null_validate"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.AddField(
            model_name='post',
            name='comment_count',
            field=models.IntegerField(blank=True, editable=False, null=True),
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
