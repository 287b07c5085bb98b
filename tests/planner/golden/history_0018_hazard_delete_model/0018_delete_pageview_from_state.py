# plan_zero_downtime blog: release 1 of 2, migration 1 of 1 in this release (change).
# Replaces blog.0018_hazard_delete_model (same dependencies).
#
# Remove the model PageView from Django's state only (drop its foreign key
# constraints).
#   The model leaves the code in this release, but the previous release, still running
#   during the deploy, reads and writes blog_pageview: dropping the table now would
#   break it. Django's state forgets the model here; the table stays until the next
#   release drops it. Its foreign key constraints go now (catalog-only): the new code
#   deletes referenced rows without knowing about blog_pageview, and the constraints
#   would refuse.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.
#
# Release 2 is pending (blog/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime blog` to write it.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0017_4_switch_comment_content"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='PageView',
                ),
            ],
            database_operations=[
                migrations.AlterField(
                    model_name='pageview',
                    name='post',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='page_views', to='blog.post'),
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
