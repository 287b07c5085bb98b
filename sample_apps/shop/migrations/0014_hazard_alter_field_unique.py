"""HAZARD add-unique-constraint: ``unique=True`` added to an existing column via AlterField.

Django adds a UNIQUE constraint (plus a varchar_pattern_ops index) on shop_product.sku:
both are built without CONCURRENTLY, blocking writes (and reads, for the constraint).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0013_hazard_add_unique_constraint"),
    ]

    operations = [
        migrations.AlterField(
            model_name="product",
            name="sku",
            field=models.CharField(max_length=64, unique=True, verbose_name="SKU"),
        ),
    ]
