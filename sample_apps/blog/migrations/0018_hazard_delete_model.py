"""HAZARD remove-model: DeleteModel drops the blog_pageview table under the running release.

DROP TABLE takes an ACCESS EXCLUSIVE lock, and the previous release still records page
views in blog_pageview: those requests fail until it is replaced.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0017_hazard_alter_db_column"),
    ]

    operations = [
        migrations.DeleteModel(
            name="PageView",
        ),
    ]
