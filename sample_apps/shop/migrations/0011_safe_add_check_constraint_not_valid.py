"""SAFE counterpart of add-check-constraint-validating, step 1 of 2: CHECK ... NOT VALID.

A NOT VALID check is only enforced for new rows, so it is added without scanning
shop_product (ACCESS EXCLUSIVE held for milliseconds). Django's state gets the constraint.
"""

from django.db import migrations, models

from sample_project.compat import check_constraint


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0010_hazard_add_check_constraint"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    model_name="product",
                    constraint=check_constraint(
                        models.Q(price__gte=0), name="shop_product_price_non_negative"
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=(
                        "ALTER TABLE shop_product ADD CONSTRAINT shop_product_price_non_negative "
                        "CHECK (price >= 0) NOT VALID"
                    ),
                    reverse_sql="ALTER TABLE shop_product DROP CONSTRAINT shop_product_price_non_negative",
                ),
            ],
        ),
    ]
