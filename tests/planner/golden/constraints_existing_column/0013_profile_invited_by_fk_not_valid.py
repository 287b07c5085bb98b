# plan_zero_downtime accounts: release 1, migration 1 of 2 in this release (expand).
# Replaces accounts.0013_hazard_add_foreign_key_validating (same dependencies).
#
# Add the foreign key of accounts_user_profile.invited_by_id to accounts_user NOT
# VALID.
#   Adding the foreign key constraint to accounts_user_profile.invited_by_id in one
#   step scans accounts_user_profile to check every row while it holds SHARE ROW
#   EXCLUSIVE on accounts_user_profile and accounts_user: writes to both tables wait.
#   Here the constraint is added NOT VALID: new rows are checked from now on, existing
#   ones are not scanned, and the locks last milliseconds. Django's state gets the
#   constraint now; the validation follows in its own transaction.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0012_safe_add_column_for_foreign_key"),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='profile',
                    name='invited_by',
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='invitees', to=settings.AUTH_USER_MODEL, verbose_name='invited by'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql='ALTER TABLE "accounts_user_profile" ADD CONSTRAINT "accounts_user_profil_invited_by_id_27c3f2f9_fk_accounts_" FOREIGN KEY ("invited_by_id") REFERENCES "accounts_user" ("id") DEFERRABLE INITIALLY DEFERRED NOT VALID',
                    reverse_sql='ALTER TABLE "accounts_user_profile" DROP CONSTRAINT "accounts_user_profil_invited_by_id_27c3f2f9_fk_accounts_"',
                ),
            ],
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
