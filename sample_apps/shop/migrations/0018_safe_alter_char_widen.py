"""SAFE counterpart of alter-column-type-rewrite: widening a varchar (120 -> 255).

varchar(n) -> varchar(m > n) is binary-coercible: a catalog-only change, no rewrite and
no scan of shop_product.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0017_hazard_alter_column_type"),
    ]

    operations = [
        migrations.AlterField(
            model_name="product",
            name="name",
            field=models.CharField(max_length=255),
        ),
    ]
