"""HAZARD drop-index-non-concurrent: AlterIndexTogether(name, set()) drops the index_together index.

The DROP INDEX runs without CONCURRENTLY and takes an ACCESS EXCLUSIVE lock on
blog_comment: reads and writes queue behind it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0004_safe_add_index_concurrently"),
    ]

    operations = [
        migrations.AlterIndexTogether(
            name="comment",
            index_together=set(),
        ),
    ]
