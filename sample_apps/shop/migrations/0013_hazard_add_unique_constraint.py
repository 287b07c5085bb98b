"""HAZARD add-unique-constraint: AddConstraint(UniqueConstraint) on the existing shop_orderitem.

ADD CONSTRAINT ... UNIQUE builds its unique index without CONCURRENTLY under an ACCESS
EXCLUSIVE lock: shop_orderitem is unreadable and unwritable for the whole build.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0012_safe_validate_check_constraint"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="orderitem",
            constraint=models.UniqueConstraint(
                fields=("order", "product"), name="shop_orderitem_one_line_per_product"
            ),
        ),
    ]
