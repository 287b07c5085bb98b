"""HAZARD run-sql-no-reverse: RunSQL without reverse_sql (IRREVERSIBLE by design).

Without reverse_sql Django refuses to unapply this migration, so a rollback of the shop
app cannot go back past it (and the cancelled orders could not be told apart anyway).
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0024_safe_run_sql_with_reverse"),
    ]

    operations = [
        migrations.RunSQL(
            "UPDATE shop_order SET status = 'cancelled' "
            "WHERE status = 'pending' AND created_at < now() - interval '90 days'"
        ),
    ]
