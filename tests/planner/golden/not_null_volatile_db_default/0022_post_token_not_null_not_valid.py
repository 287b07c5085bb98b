# plan_zero_downtime blog: release 1, migration 3 of 4 in this release (enforce).
#
# Add CHECK (token IS NOT NULL) NOT VALID on blog_post.token.
#   Adds CHECK (token IS NOT NULL) on blog_post as NOT VALID: new and updated rows are
#   checked from now on, existing rows are not scanned, so the ACCESS EXCLUSIVE lock
#   lasts milliseconds. The next migration validates it, in its own transaction.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0021_backfill_post_token'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_token_not_null" CHECK ("token" IS NOT NULL) NOT VALID',
            reverse_sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_token_not_null"',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
