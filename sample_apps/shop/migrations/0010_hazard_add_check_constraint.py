"""HAZARD add-check-constraint-validating: AddConstraint(CheckConstraint) on existing shop_orderitem.

ADD CONSTRAINT ... CHECK validates every existing row while holding an ACCESS EXCLUSIVE
lock: no read or write of shop_orderitem until the whole table has been scanned.
"""

from django.db import migrations, models

from sample_project.compat import check_constraint


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0009_safe_validate_foreign_key"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=check_constraint(
                models.Q(quantity__gt=0), name="shop_orderitem_quantity_positive"
            ),
        ),
    ]
