"""HAZARD set-not-null: AlterField from null=True to null=False on blog_post.word_count.

ALTER COLUMN ... SET NOT NULL scans the whole table to prove there is no NULL, holding
an ACCESS EXCLUSIVE lock: blog_post is unreadable and unwritable for the scan.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0007_hazard_alter_unique_together"),
    ]

    operations = [
        migrations.AlterField(
            model_name="post",
            name="word_count",
            field=models.IntegerField(editable=False),
        ),
    ]
