"""HAZARD update-without-where: RunSQL UPDATE of every row of blog_post in one transaction.

Every row of the busy table is row-locked until commit (writers queue behind it) and
rewritten as a new row version: bloat and a burst of WAL proportional to the table.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0018_hazard_delete_model"),
    ]

    operations = [
        migrations.RunSQL(
            # View counts now come from the analytics service.
            sql="UPDATE blog_post SET view_count = 0",
            # The old counts are gone; unapplying leaves them at zero.
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
