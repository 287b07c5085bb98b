"""SAFE counterpart of run-python-with-ddl, step 1 of 2: the schema change alone.

A nullable column without default is a catalog-only change; its transaction commits at
once, so the ACCESS EXCLUSIVE lock on blog_post is held for milliseconds.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0011_hazard_run_python_with_ddl"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="reading_time_minutes",
            field=models.IntegerField(blank=True, null=True, verbose_name="reading time (minutes)"),
        ),
    ]
