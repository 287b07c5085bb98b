"""SAFE counterpart of add-index-non-concurrent: AddIndexConcurrently in a non-atomic migration.

A named index replacing the index_together one is built CONCURRENTLY (SHARE UPDATE
EXCLUSIVE): blog_comment stays writable. Not possible in a transaction: ``atomic = False``.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("blog", "0003_hazard_alter_index_together"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="comment",
            index=models.Index(fields=["post", "created_at"], name="blog_comment_post_created_idx"),
        ),
    ]
