"""SAFE counterpart of add-unique-constraint, step 2 of 2: ADD CONSTRAINT ... UNIQUE USING INDEX.

Turning the index built by 0015 into a constraint is a catalog-only change: no scan and
no index build under the ACCESS EXCLUSIVE lock. Django's state gets the UniqueConstraint.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0015_safe_add_unique_index_concurrently"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="customer",
                    constraint=models.UniqueConstraint(
                        fields=("email",), name="shop_customer_email_uniq"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE shop_customer ADD CONSTRAINT shop_customer_email_uniq "
                        "UNIQUE USING INDEX shop_customer_email_uniq"
                    ),
                    # Dropping the constraint drops its index too.
                    reverse_sql="ALTER TABLE shop_customer DROP CONSTRAINT shop_customer_email_uniq",
                ),
            ],
        ),
    ]
