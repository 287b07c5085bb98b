# plan_zero_downtime blog: release 1 of 2, migration 1 of 4 in this release (expand).
# Replaces blog.0017_hazard_alter_db_column (same dependencies).
#
# Add blog_comment.content, kept in step with body by a trigger.
#   blog_comment.body is renamed content: RENAME COLUMN would break the previous
#   release at once (its queries name body). Expand/contract instead, step 1: content
#   is added nullable (catalog-only) and a trigger copies between the two columns on
#   every INSERT and UPDATE, both ways: the previous release writes body, this release
#   writes content. CHECK (content IS NOT NULL) NOT VALID holds new rows to it without
#   a scan.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0016_safe_remove_field_state_only"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            sql=[
                'ALTER TABLE "blog_comment" ADD COLUMN "content" text NULL',
                'CREATE FUNCTION "blog_comment_content_sync"() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  IF TG_OP = \'INSERT\' THEN\n    IF NEW."content" IS NULL THEN NEW."content" := NEW."body";\n    ELSIF NEW."body" IS NULL THEN NEW."body" := NEW."content";\n    END IF;\n  ELSIF NEW."content" IS DISTINCT FROM OLD."content" THEN\n    NEW."body" := NEW."content";\n  ELSIF NEW."body" IS DISTINCT FROM OLD."body" THEN\n    NEW."content" := NEW."body";\n  END IF;\n  RETURN NEW;\nEND\n$$',
                'CREATE TRIGGER "blog_comment_content_sync" BEFORE INSERT OR UPDATE ON "blog_comment" FOR EACH ROW EXECUTE FUNCTION "blog_comment_content_sync"()',
                'ALTER TABLE "blog_comment" ADD CONSTRAINT "blog_comment_content_not_null" CHECK ("content" IS NOT NULL) NOT VALID',
            ],
            reverse_sql=[
                'DROP TRIGGER IF EXISTS "blog_comment_content_sync" ON "blog_comment"',
                'DROP FUNCTION IF EXISTS "blog_comment_content_sync"()',
                'ALTER TABLE "blog_comment" DROP COLUMN IF EXISTS "content"',
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
