"""HAZARD alter-column-type-rewrite: IntegerField -> BigIntegerField on the existing shop_order.

integer -> bigint is not binary-coercible: PostgreSQL rewrites the whole table and its
indexes under an ACCESS EXCLUSIVE lock.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0016_safe_add_unique_constraint_using_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="payment_reference",
            field=models.BigIntegerField(
                blank=True, null=True, help_text="Identifier of the payment at the payment provider."
            ),
        ),
    ]
