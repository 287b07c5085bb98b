"""HAZARD add-index-non-concurrent: AlterIndexTogether adds an index_together to blog_comment.

The index is built with a plain CREATE INDEX: SHARE lock, writes to the existing
blog_comment table wait for the whole build. (index_together is gone from model Meta
since Django 5.1; the operation still runs for historical migrations like this one.)
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0002_safe_new_model_with_constraints"),
    ]

    operations = [
        migrations.AlterIndexTogether(
            name="comment",
            index_together={("post", "created_at")},
        ),
    ]
