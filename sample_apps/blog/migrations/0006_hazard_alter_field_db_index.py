"""HAZARD add-index-non-concurrent: ``db_index=True`` added to blog_post.published_at via AlterField.

Django emits a plain CREATE INDEX: SHARE lock, every write to blog_post waits for the build.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0005_hazard_remove_index_together"),
    ]

    operations = [
        migrations.AlterField(
            model_name="post",
            name="published_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
    ]
