"""SAFE counterpart of alter-column-type-rewrite: CharField -> TextField (varchar -> text).

varchar -> text is binary-coercible: a catalog-only change, no rewrite of shop_order.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0018_safe_alter_char_widen"),
    ]

    operations = [
        migrations.AlterField(
            model_name="order",
            name="notes",
            field=models.TextField(blank=True),
        ),
    ]
