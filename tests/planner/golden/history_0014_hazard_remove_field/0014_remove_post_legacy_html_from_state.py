# plan_zero_downtime blog: release 1 of 2, migration 1 of 1 in this release (change).
# Replaces blog.0014_hazard_remove_field (same dependencies).
#
# Remove Post.legacy_html from Django's state only (drop NOT NULL).
#   The field leaves the code in this release, but the previous release, still running
#   during the deploy, reads and writes the column blog_post.legacy_html: dropping it
#   now would break it. Django's state forgets the field here; the database keeps the
#   column blog_post.legacy_html until the next release drops it. What the new code
#   would trip over goes now, with Django's own AlterField on a copy of the field
#   (drop NOT NULL): catalog-only, ACCESS EXCLUSIVE on blog_post for milliseconds.
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
        ("blog", "0013_safe_backfill_in_batches"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='post',
                    name='legacy_html',
                ),
            ],
            database_operations=[
                # Catalog-only: what the new code would trip over (drop NOT NULL).
                migrations.AlterField(
                    model_name='post',
                    name='legacy_html',
                    field=models.TextField(blank=True, null=True, verbose_name='HTML imported from the old CMS'),
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
