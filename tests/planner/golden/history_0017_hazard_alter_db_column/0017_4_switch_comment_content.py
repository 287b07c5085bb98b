# plan_zero_downtime blog: release 1 of 2, migration 4 of 4 in this release (switch).
# Replaces blog.0017_hazard_alter_db_column.
#
# Switch Django to blog_comment.content.
#   Django's state moves to content here, and content becomes NOT NULL (no scan: the
#   CHECK is validated; ACCESS EXCLUSIVE for milliseconds). The trigger keeps body up
#   to date for the previous release until the next release drops it.
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
        ('blog', '0017_3_validate_comment_body_copy'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # Only content changes: the trigger keeps both columns in step.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='comment',
                    name='body',
                    field=models.TextField(db_column='content'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'ALTER TABLE "blog_comment" ALTER COLUMN "content" SET NOT NULL',
                        'ALTER TABLE "blog_comment" DROP CONSTRAINT "blog_comment_content_not_null"',
                    ],
                    reverse_sql=[
                        'ALTER TABLE "blog_comment" ALTER COLUMN "content" DROP NOT NULL',
                        'ALTER TABLE "blog_comment" ADD CONSTRAINT "blog_comment_content_not_null" CHECK ("content" IS NOT NULL) NOT VALID',
                    ],
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
