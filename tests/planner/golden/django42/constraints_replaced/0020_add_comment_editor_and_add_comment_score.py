# plan_zero_downtime blog: release 1, migration 1 of 5 in this release (expand).
# Replaces blog.0020_hazard_constraints (same dependencies).
#
# Add blog_comment.editor_id and its foreign key to accounts_user NOT VALID.
#   A foreign key added in one step scans blog_comment to check every row while it
#   holds SHARE ROW EXCLUSIVE on blog_comment and accounts_user, and builds its index
#   under SHARE: writes to both tables wait. Here blog_comment.editor_id is added
#   alone, then the constraint NOT VALID: new rows are checked from now on, existing
#   ones are not scanned, and the locks last milliseconds. Django's state gets the
#   ForeignKey now; its index and the validation follow.
#
# Add blog_comment.score, its CHECK NOT VALID.
#   The column type of blog_comment.score brings CHECK ("score" >= 0): written inline,
#   PostgreSQL would scan blog_comment under ACCESS EXCLUSIVE to check it. The column
#   is added without it, then the CHECK is added NOT VALID: new and updated rows are
#   checked from now on, no scan.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ('blog', '0019_hazard_update_without_where'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='comment',
                    name='editor',
                    field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='edited_comments', to=settings.AUTH_USER_MODEL),
                ),
            ],
            database_operations=[
                # The column alone: no constraint, no index yet.
                migrations.AddField(
                    model_name='comment',
                    name='editor',
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='edited_comments', to=settings.AUTH_USER_MODEL),
                ),
                # Checked for new rows from now on; existing rows are validated later.
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_comment" ADD CONSTRAINT "blog_comment_editor_id_001446d4_fk_accounts_user_id" FOREIGN KEY ("editor_id") REFERENCES "accounts_user" ("id") DEFERRABLE INITIALLY DEFERRED NOT VALID',
                    reverse_sql='ALTER TABLE "blog_comment" DROP CONSTRAINT "blog_comment_editor_id_001446d4_fk_accounts_user_id"',
                ),
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='comment',
                    name='score',
                    field=models.PositiveSmallIntegerField(null=True, unique=True),
                ),
            ],
            database_operations=[
                # The column without its CHECK: no scan.
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_comment" ADD COLUMN "score" smallint NULL',
                    reverse_sql='ALTER TABLE "blog_comment" DROP COLUMN "score"',
                ),
                # The type's CHECK, for new and updated rows; existing rows later.
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_comment" ADD CONSTRAINT "blog_comment_score_check" CHECK ("score" >= 0) NOT VALID',
                    reverse_sql='ALTER TABLE "blog_comment" DROP CONSTRAINT "blog_comment_score_check"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
