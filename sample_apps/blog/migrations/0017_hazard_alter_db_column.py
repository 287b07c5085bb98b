"""HAZARD alter-db-column: AlterField changing db_column renames blog_comment.body to "content".

The rename takes an ACCESS EXCLUSIVE lock, and the previous release still reads and
writes the "body" column, which no longer exists.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0016_safe_remove_field_state_only"),
    ]

    operations = [
        migrations.AlterField(
            model_name="comment",
            name="body",
            field=models.TextField(db_column="content"),
        ),
    ]
