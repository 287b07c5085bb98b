"""SAFE counterpart of add-check-constraint-validating, step 2 of 2: VALIDATE CONSTRAINT.

Validation scans shop_product under a SHARE UPDATE EXCLUSIVE lock only: reads and
writes go on during the scan.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0011_safe_add_check_constraint_not_valid"),
    ]

    operations = [
        migrations.RunSQL(
            sql="ALTER TABLE shop_product VALIDATE CONSTRAINT shop_product_price_non_negative",
            # A validated constraint cannot be "unvalidated"; nothing to undo.
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
