# plan_zero_downtime blog: release 1, migration 2 of 2 in this release (enforce).
# Replaces blog.0007_hazard_alter_unique_together.
#
# ADD CONSTRAINT blog_post_author_id_slug_1f70e997_uniq UNIQUE USING INDEX on
# blog_post.
#   ADD CONSTRAINT ... UNIQUE USING INDEX turns the index built by the previous
#   migration into the constraint: catalog-only, ACCESS EXCLUSIVE on blog_post for
#   milliseconds, no scan and no build. Django's state gets the constraint here.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0007_1_post_unique_together_index'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterUniqueTogether(
                    name='post',
                    unique_together={('author', 'slug')},
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_author_id_slug_1f70e997_uniq" UNIQUE USING INDEX "blog_post_author_id_slug_1f70e997_uniq"',
                    reverse_sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_author_id_slug_1f70e997_uniq"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
