"""HAZARD remove-field: RemoveField drops blog_post.legacy_html under the running release.

The previous release still lists legacy_html in its SELECTs and INSERTs: every query on
blog_post fails with "column does not exist" until it is replaced.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0013_safe_backfill_in_batches"),
    ]

    operations = [
        migrations.RemoveField(
            model_name="post",
            name="legacy_html",
        ),
    ]
