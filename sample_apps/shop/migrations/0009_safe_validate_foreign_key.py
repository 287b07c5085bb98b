"""SAFE counterpart of add-foreign-key-validating, step 3 of 3: VALIDATE CONSTRAINT.

Validation scans shop_customer under SHARE UPDATE EXCLUSIVE only (ROW SHARE on
accounts_user): reads and writes go on while existing rows are checked.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0008_safe_add_foreign_key_index_concurrently"),
    ]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE shop_customer VALIDATE CONSTRAINT shop_customer_account_manager_id_fk",
            # A validated constraint cannot be "unvalidated"; nothing to undo.
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
