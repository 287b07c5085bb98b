# plan_zero_downtime blog: release 2 of 2, migration 2 of 4 in this release (enforce).
#
# Add CHECK (public_id IS NOT NULL) NOT VALID on blog_post.public_id.
#   Adds CHECK (public_id IS NOT NULL) on blog_post as NOT VALID: new and updated rows
#   are checked from now on, existing rows are not scanned, so the ACCESS EXCLUSIVE
#   lock lasts milliseconds. The next migration validates it, in its own transaction.
#
# Add CHECK (comment_count IS NOT NULL) NOT VALID on blog_post.comment_count.
#   Adds CHECK (comment_count IS NOT NULL) on blog_post as NOT VALID: new and updated
#   rows are checked from now on, existing rows are not scanned, so the ACCESS
#   EXCLUSIVE lock lasts milliseconds. The next migration validates it, in its own
#   transaction.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0022_backfill_post_public_id_and_fill_post_comment_count'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_public_id_not_null" CHECK ("public_id" IS NOT NULL) NOT VALID',
            reverse_sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_public_id_not_null"',
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_comment_count_not_null" CHECK ("comment_count" IS NOT NULL) NOT VALID',
            reverse_sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_comment_count_not_null"',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
