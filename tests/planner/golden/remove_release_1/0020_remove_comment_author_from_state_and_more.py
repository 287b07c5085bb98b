# plan_zero_downtime blog: release 1 of 2, migration 1 of 1 in this release (change).
#
# Remove Comment.author from Django's state only (drop the foreign key constraint).
#   The field leaves the code in this release, but the previous release, still running
#   during the deploy, reads and writes the column blog_comment.author_id: dropping it
#   now would break it. Django's state forgets the field here; the database keeps the
#   column blog_comment.author_id until the next release drops it. What the new code
#   would trip over goes now, with Django's own AlterField on a copy of the field
#   (drop the foreign key constraint): catalog-only, ACCESS EXCLUSIVE on blog_comment
#   for milliseconds.
#
# Remove Post.view_count from Django's state only (drop NOT NULL).
#   The field leaves the code in this release, but the previous release, still running
#   during the deploy, reads and writes the column blog_post.view_count: dropping it
#   now would break it. Django's state forgets the field here; the database keeps the
#   column blog_post.view_count until the next release drops it. What the new code
#   would trip over goes now, with Django's own AlterField on a copy of the field
#   (drop NOT NULL): catalog-only, ACCESS EXCLUSIVE on blog_post for milliseconds.
#
# Remove the model Series from Django's state only (drop its foreign key constraints).
#   The model leaves the code in this release, but the previous release, still running
#   during the deploy, reads and writes blog_series: dropping the table now would
#   break it. Django's state forgets the model here; the table stays until the next
#   release drops it. Its foreign key constraints go now (catalog-only): the new code
#   deletes referenced rows without knowing about blog_series, and the constraints
#   would refuse.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.
#
# Release 2 is pending (blog/migrations/zero_downtime_plan.json): once this release is
# deployed everywhere, run `python manage.py plan_zero_downtime blog` to write it.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0019_hazard_update_without_where'),
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
                    model_name='comment',
                    name='author',
                ),
            ],
            database_operations=[
                # Catalog-only: what the new code would trip over (drop the foreign key constraint).
                migrations.AlterField(
                    model_name='comment',
                    name='author',
                    field=models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='comments', to=settings.AUTH_USER_MODEL),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='post',
                    name='view_count',
                ),
            ],
            database_operations=[
                # Catalog-only: what the new code would trip over (drop NOT NULL).
                migrations.AlterField(
                    model_name='post',
                    name='view_count',
                    field=models.IntegerField(default=0, null=True),
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name='Series',
                ),
            ],
            database_operations=[
                migrations.AlterField(
                    model_name='series',
                    name='owner',
                    field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE, related_name='owned_series', to=settings.AUTH_USER_MODEL),
                ),
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_series_posts" DROP CONSTRAINT IF EXISTS "blog_series_posts_series_id_08254c41_fk_blog_series_id"',
                    reverse_sql='ALTER TABLE "blog_series_posts" ADD CONSTRAINT "blog_series_posts_series_id_08254c41_fk_blog_series_id" FOREIGN KEY ("series_id") REFERENCES "blog_series" ("id") DEFERRABLE INITIALLY DEFERRED',
                ),
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_series_posts" DROP CONSTRAINT IF EXISTS "blog_series_posts_post_id_2cd98008_fk_blog_post_id"',
                    reverse_sql='ALTER TABLE "blog_series_posts" ADD CONSTRAINT "blog_series_posts_post_id_2cd98008_fk_blog_post_id" FOREIGN KEY ("post_id") REFERENCES "blog_post" ("id") DEFERRABLE INITIALLY DEFERRED',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
