# plan_zero_downtime blog: release 1, migration 1 of 1 in this release (build).
# Replaces blog.0003_hazard_alter_index_together (same dependencies).
#
# index_together of comment on blog_comment, CONCURRENTLY.
#   index_together on blog_comment: indexes are built with CREATE INDEX CONCURRENTLY
#   and dropped with DROP INDEX CONCURRENTLY, under the names Django gives them, so
#   reads and writes go on. Django's state gets the AlterIndexTogether. Not atomic:
#   CONCURRENTLY cannot run in a transaction.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_comment_post_id_created_at_9f00217e_idx"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("blog", "0002_safe_new_model_with_constraints"),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterIndexTogether(
                    name='comment',
                    index_together={('post', 'created_at')},
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_comment_post_id_created_at_9f00217e_idx" ON "blog_comment" ("post_id", "created_at")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_comment_post_id_created_at_9f00217e_idx"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_comment_post_id_created_at_9f00217e_idx" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_post_id_created_at_9f00217e_idx"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_post_id_created_at_9f00217e_idx"',
                ),
            ],
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
