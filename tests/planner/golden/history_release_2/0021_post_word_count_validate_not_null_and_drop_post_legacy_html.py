# plan_zero_downtime blog: release 2 of 2, migration 2 of 2 in this release (enforce,
# contract).
#
# Validate, then blog_post.word_count SET NOT NULL.
#   VALIDATE CONSTRAINT scans blog_post under SHARE UPDATE EXCLUSIVE only: reads and
#   writes go on while existing rows are checked. Then SET NOT NULL takes ACCESS
#   EXCLUSIVE for milliseconds: PostgreSQL 12+ skips its scan because the validated
#   CHECK proves there is no NULL. The CHECK is dropped afterwards.
#
# Drop the column blog_post.legacy_html.
#   No running release knows the column any more: DROP COLUMN is catalog-only (the
#   space is reclaimed by later writes), ACCESS EXCLUSIVE on blog_post for
#   milliseconds.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('blog', '0020_post_word_count_not_null_not_valid_and_more'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" VALIDATE CONSTRAINT "blog_post_word_count_not_null"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # No scan: the validated CHECK proves there is no NULL (PostgreSQL 12+).
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" ALTER COLUMN "word_count" SET NOT NULL',
            reverse_sql='ALTER TABLE "blog_post" ALTER COLUMN "word_count" DROP NOT NULL',
        ),
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" DROP CONSTRAINT "blog_post_word_count_not_null"',
            reverse_sql='ALTER TABLE "blog_post" ADD CONSTRAINT "blog_post_word_count_not_null" CHECK ("word_count" IS NOT NULL) NOT VALID',
        ),
        # The reverse restores the structure, not the data.
        # It left Django's state in the previous release: no running release uses it.
        migrations.RunSQL(
            sql='ALTER TABLE "blog_post" DROP COLUMN IF EXISTS "legacy_html"',
            reverse_sql='ALTER TABLE "blog_post" ADD COLUMN IF NOT EXISTS "legacy_html" text NULL',
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
