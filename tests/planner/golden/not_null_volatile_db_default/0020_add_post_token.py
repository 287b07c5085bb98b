# plan_zero_downtime blog: release 1, migration 1 of 4 in this release (expand).
#
# Add blog_post.token nullable (state: the final NOT NULL field).
#   blog_post.token is a new NOT NULL column whose value is computed per row
#   (db_default (GEN_RANDOM_UUID())). Adding it NOT NULL in one migration would either
#   give every existing row the same value or rewrite blog_post under ACCESS
#   EXCLUSIVE. Step 1: the column is added nullable and its DEFAULT
#   (GEN_RANDOM_UUID()) is set afterwards (for new rows only: no rewrite), a
#   catalog-only change. Django's state already has the final field; the database
#   catches up in the next steps.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

import django.contrib.postgres.functions
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
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
                    model_name='post',
                    name='token',
                    field=models.UUIDField(db_default=django.contrib.postgres.functions.RandomUUID()),
                ),
            ],
            database_operations=[
                # The column alone, nullable: no rewrite, no scan.
                migrations.AddField(
                    model_name='post',
                    name='token',
                    field=models.UUIDField(null=True),
                ),
                # For new rows only: existing rows are filled by the backfill.
                migrations.RunSQL(
                    sql='ALTER TABLE "blog_post" ALTER COLUMN "token" SET DEFAULT (GEN_RANDOM_UUID())',
                    reverse_sql='ALTER TABLE "blog_post" ALTER COLUMN "token" DROP DEFAULT',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
