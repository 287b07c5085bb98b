# plan_zero_downtime blog: release 1, migration 4 of 4 in this release (enforce).
#
# Validate, then blog_post.token SET NOT NULL.
#   VALIDATE CONSTRAINT scans blog_post under SHARE UPDATE EXCLUSIVE only: reads and
#   writes go on while existing rows are checked. Then SET NOT NULL takes ACCESS
#   EXCLUSIVE for milliseconds: PostgreSQL 12+ skips its scan because the validated
#   CHECK proves there is no NULL. The CHECK is dropped afterwards.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0022_post_token_not_null_not_valid'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" VALIDATE CONSTRAINT "blog_post_token_not_null"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # No scan: the validated CHECK proves there is no NULL (PostgreSQL 12+).
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" ALTER COLUMN "token" SET NOT NULL',
            reverse_sql='ALTER TABLE "blog_post" ALTER COLUMN "token" DROP NOT NULL',
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_token_not_null"',
            reverse_sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_token_not_null" CHECK ("token" IS NOT NULL) NOT VALID',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
