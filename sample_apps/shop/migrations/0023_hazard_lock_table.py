"""HAZARD lock-table: an explicit LOCK TABLE in a migration.

SHARE ROW EXCLUSIVE on shop_order and shop_orderitem blocks every write to both tables
until the migration's transaction commits.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("shop", "0022_hazard_remove_foreign_key"),
    ]

    operations = [
        migrations.RunSQL(
            sql=[
                "LOCK TABLE shop_order, shop_orderitem IN SHARE ROW EXCLUSIVE MODE",
                """
                UPDATE shop_order
                   SET total = lines.total
                  FROM (
                        SELECT order_id, SUM(quantity * unit_price) AS total
                          FROM shop_orderitem
                         GROUP BY order_id
                       ) AS lines
                 WHERE lines.order_id = shop_order.id
                   AND shop_order.total <> lines.total
                """,
            ],
            # Totals recomputed from their lines are correct either way.
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
