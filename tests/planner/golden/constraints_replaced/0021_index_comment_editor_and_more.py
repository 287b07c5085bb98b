# plan_zero_downtime blog: release 1, migration 2 of 5 in this release (build).
# Replaces blog.0020_hazard_constraints.
#
# Build the index of blog_comment.editor_id CONCURRENTLY.
#   The foreign key's index blog_comment_editor_id_001446d4 (the name Django gives it)
#   is built with CREATE INDEX CONCURRENTLY: SHARE UPDATE EXCLUSIVE, reads and writes
#   of blog_comment go on. It cannot run in a transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_comment_editor_id_001446d4"; then migrate again.
#
# Build the index of blog_comment.author_name CONCURRENTLY.
#   db_index on blog_comment.author_name: the index is built with CREATE INDEX
#   CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes go on) under the name
#   Django gives it (blog_comment_author_name_4f81cf91,
#   blog_comment_author_name_4f81cf91_like), so that later migrations find it. It
#   cannot run in a transaction, hence atomic = False.
#   If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it
#   leaves an INVALID index behind: run DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_comment_author_name_4f81cf91"; DROP INDEX CONCURRENTLY IF EXISTS
#   "blog_comment_author_name_4f81cf91_like"; then migrate again.
#
# Drop the index of blog_post.slug CONCURRENTLY.
#   db_index removed from blog_post.slug: DROP INDEX CONCURRENTLY
#   (blog_post_slug_b95473f2, blog_post_slug_b95473f2_like) blocks nobody, where DROP
#   INDEX takes ACCESS EXCLUSIVE. It cannot run in a transaction, hence atomic =
#   False.
#
# Not atomic: each statement commits on its own (CONCURRENTLY and batched backfills
# cannot run inside one transaction). lock_timeout is '5s' for the session during this
# migration and reset at its end: a lock that cannot be had in 5s fails the migration
# instead of queueing traffic behind it.

from django.db import migrations, models


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ('blog', '0020_add_comment_editor_and_add_comment_score'),
    ]

    operations = [
        # Not atomic: a session setting, reset below. Give up after 5s.
        migrations.RunSQL(
            sql="SET lock_timeout = '5s'",
            reverse_sql='RESET lock_timeout',
        ),
        migrations.RunSQL(
            sql=[
                'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_comment_editor_id_001446d4" ON "blog_comment" ("editor_id")',
                'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_comment_editor_id_001446d4"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_comment_editor_id_001446d4" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_editor_id_001446d4"; then migrate again\'; END IF; END $$',
            ],
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_editor_id_001446d4"',
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='comment',
                    name='author_name',
                    field=models.CharField(db_index=True, max_length=100),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_comment_author_name_4f81cf91" ON "blog_comment" ("author_name")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_comment_author_name_4f81cf91"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_comment_author_name_4f81cf91" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_author_name_4f81cf91"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_author_name_4f81cf91"',
                ),
                migrations.RunSQL(
                    sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_comment_author_name_4f81cf91_like" ON "blog_comment" ("author_name" varchar_pattern_ops)',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_comment_author_name_4f81cf91_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_comment_author_name_4f81cf91_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_author_name_4f81cf91_like"; then migrate again\'; END IF; END $$',
                    ],
                    reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_author_name_4f81cf91_like"',
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='post',
                    name='slug',
                    field=models.SlugField(db_index=False, max_length=200),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_post_slug_b95473f2"',
                    reverse_sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_post_slug_b95473f2" ON "blog_post" ("slug")',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_post_slug_b95473f2"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_post_slug_b95473f2" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_post_slug_b95473f2"; then migrate again\'; END IF; END $$',
                    ],
                ),
                migrations.RunSQL(
                    sql='DROP INDEX CONCURRENTLY IF EXISTS "blog_post_slug_b95473f2_like"',
                    reverse_sql=[
                        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "blog_post_slug_b95473f2_like" ON "blog_post" ("slug" varchar_pattern_ops)',
                        'DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(\'"blog_post_slug_b95473f2_like"\') AND NOT indisvalid) THEN RAISE EXCEPTION \'index "blog_post_slug_b95473f2_like" is INVALID (a CONCURRENTLY build failed): run DROP INDEX CONCURRENTLY IF EXISTS "blog_post_slug_b95473f2_like"; then migrate again\'; END IF; END $$',
                    ],
                ),
            ],
        ),
        migrations.RunSQL(
            sql='RESET lock_timeout',
            reverse_sql="SET lock_timeout = '5s'",
        ),
    ]
