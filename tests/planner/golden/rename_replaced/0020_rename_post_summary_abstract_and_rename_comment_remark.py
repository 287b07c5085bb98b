# plan_zero_downtime blog: release 1, migration 1 of 1 in this release (change).
# Replaces blog.0020_hazard_renames (same dependencies).
#
# Rename Post.summary to abstract in Django's state only (the column stays summary).
#   Renaming the column would break the previous release at once: its queries name
#   blog_post.summary. The field is renamed to abstract in Django's state only and
#   keeps its column through db_column='summary' (models.py says so too): no SQL, no
#   lock, both releases work.
#
# Rename the model Comment to Remark in Django's state only (the table stays
# blog_comment).
#   Renaming the table would break the previous release at once: its queries name
#   blog_comment. The model is renamed to Remark in Django's state only and keeps its
#   table through Meta.db_table = 'blog_comment' (models.py says so too): no SQL, no
#   lock, both releases work.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0019_hazard_update_without_where"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # No SQL: the column keeps its name (summary).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='post',
                    name='summary',
                    field=models.TextField(blank=True, db_column='summary'),
                ),
                migrations.RenameField(
                    model_name='post',
                    old_name='summary',
                    new_name='abstract',
                ),
            ],
            database_operations=[],
        ),
        # No SQL: the table keeps its name (blog_comment).
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable(
                    name='Comment',
                    table='blog_comment',
                ),
                migrations.RenameModel(
                    old_name='Comment',
                    new_name='Remark',
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
