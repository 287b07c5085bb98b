# plan_zero_downtime blog: release 1, migration 4 of 5 in this release (build).
# Replaces blog.0020_hazard_constraints.
#
# Build the unique index of blog_comment.score CONCURRENTLY.
#   ADD CONSTRAINT ... UNIQUE would build its index under ACCESS EXCLUSIVE: nobody
#   could read or write blog_comment meanwhile. The unique index
#   blog_comment_score_3b5eaad0_uniq is built first with CREATE UNIQUE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on). It cannot run in a
#   transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_comment_score_3b5eaad0_uniq"; then migrate again.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('blog', '0022_validate_comment_editor_fk_and_validate_comment_score_check'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "blog_comment_score_3b5eaad0_uniq" ON "blog_comment" ("score")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_comment_score_3b5eaad0_uniq"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_comment_score_3b5eaad0_uniq" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_score_3b5eaad0_uniq"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_score_3b5eaad0_uniq"',
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
