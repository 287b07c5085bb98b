"""HAZARD add-column-volatile-default: ADD COLUMN ... DEFAULT gen_random_uuid() on shop_order.

A volatile default must be computed for every existing row: PostgreSQL rewrites the whole
table under an ACCESS EXCLUSIVE lock (constant defaults are catalog-only since PG 11).
"""

import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0020_hazard_add_positive_integer_field"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="order",
                    name="public_id",
                    field=models.UUIDField(
                        default=uuid.uuid4, editable=False, null=True, verbose_name="public identifier"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    # gen_random_uuid() is built in since PostgreSQL 13.
                    sql="ALTER TABLE shop_order ADD COLUMN public_id uuid NULL DEFAULT gen_random_uuid()",
                    reverse_sql="ALTER TABLE shop_order DROP COLUMN public_id",
                ),
            ],
        ),
    ]
