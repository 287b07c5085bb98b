# plan_zero_downtime blog: release 1, migration 1 of 1 in this release (build).
# Replaces blog.0006_hazard_alter_field_db_index (same dependencies).
#
# Build the index of blog_post.published_at CONCURRENTLY.
#   db_index on blog_post.published_at: the index is built with CREATE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on) under the name
#   Django gives it (blog_post_published_at_9524a659), so that later migrations find
#   it. It cannot run in a transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_post_published_at_9524a659"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("blog", "0005_alter_comment_index_together"),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='post',
                    name='published_at',
                    field=models.DateTimeField(blank=True, db_index=True, null=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_post_published_at_9524a659" ON "blog_post" ("published_at")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_post_published_at_9524a659"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_post_published_at_9524a659" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_post_published_at_9524a659"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_post_published_at_9524a659"',
                ),
            ],
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
