# plan_zero_downtime blog: release 1, migration 1 of 2 in this release (build).
# Replaces blog.0007_hazard_alter_unique_together (same dependencies).
#
# Build the unique index(es) of unique_together on blog_post CONCURRENTLY.
#   ADD CONSTRAINT ... UNIQUE would build its index under ACCESS EXCLUSIVE: nobody
#   could read or write blog_post meanwhile. The unique index
#   blog_post_author_id_slug_1f70e997_uniq is built first with CREATE UNIQUE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on). It cannot run in a
#   transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_post_author_id_slug_1f70e997_uniq"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("blog", "0006_index_post_published_at"),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "blog_post_author_id_slug_1f70e997_uniq" ON "blog_post" ("author_id", "slug")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_post_author_id_slug_1f70e997_uniq"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_post_author_id_slug_1f70e997_uniq" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_post_author_id_slug_1f70e997_uniq"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_post_author_id_slug_1f70e997_uniq"',
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
