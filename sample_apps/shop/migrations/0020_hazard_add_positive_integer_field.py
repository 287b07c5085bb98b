"""HAZARD add-column-check-scan: a PositiveIntegerField added to the existing shop_product.

Django adds the column with an inline CHECK ("reorder_level" >= 0), which PostgreSQL
validates by scanning the whole table while holding the ACCESS EXCLUSIVE lock.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0019_safe_alter_char_to_text"),
    ]

    operations = [
        migrations.AddField(
            model_name="product",
            name="reorder_level",
            field=models.PositiveIntegerField(
                blank=True, null=True, help_text="Restock when the stock falls below this level."
            ),
        ),
    ]
