"""HAZARD remove-field: RemoveField of the ForeignKey Order.placed_by.

The previous release still SELECTs and INSERTs shop_order.placed_by_id, which no longer
exists. Django also has to look the FK constraint's name up in the live database.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0021_hazard_add_column_volatile_default"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="order",
            name="placed_by",
        ),
    ]
