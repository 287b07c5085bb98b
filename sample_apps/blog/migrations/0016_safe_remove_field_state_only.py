"""SAFE counterpart of remove-field, step 2 of 2: remove the field from Django's state only.

No SQL runs: the nullable column stays in blog_comment, so the previous release keeps
working; it can be dropped for real once no running code knows it.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0015_safe_make_field_nullable"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name="comment",
                    name="user_agent",
                ),
            ],
            database_operations=[],
        ),
    ]
