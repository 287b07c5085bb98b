# plan_zero_downtime accounts: release 1, migration 2 of 2 in this release (enforce).
# Replaces accounts.0013_hazard_add_foreign_key_validating.
#
# Validate the foreign key accounts_user_profil_invited_by_id_27c3f2f9_fk_accounts_.
#   VALIDATE CONSTRAINT checks the existing rows of accounts_user_profile under SHARE
#   UPDATE EXCLUSIVE (and ROW SHARE on accounts_user): reads and writes go on
#   meanwhile. In its own transaction, so no lock taken earlier is held while it
#   scans.
#
# Atomic: one transaction with SET LOCAL lock_timeout = '5s', so a lock that cannot be
# had in 5s fails the migration instead of queueing all traffic on the table behind
# it. Retry the deploy when it does.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0013_profile_invited_by_fk_not_valid'),
    ]

    operations = [
        # Give up after 5s rather than queue all traffic behind a lock.
        migrations.RunSQL(
            sql="SET LOCAL lock_timeout = '5s'",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # A validated constraint cannot be made NOT VALID again: nothing to undo.
        migrations.RunSQL(
            sql='ALTER TABLE "accounts_user_profile" VALIDATE CONSTRAINT "accounts_user_profil_invited_by_id_27c3f2f9_fk_accounts_"',
            reverse_sql=migrations.RunSQL.noop,
        ),
        # The same when migrating backwards.
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            reverse_sql="SET LOCAL lock_timeout = '5s'",
        ),
    ]
