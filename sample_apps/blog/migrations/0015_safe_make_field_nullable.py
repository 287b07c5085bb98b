"""SAFE counterpart of remove-field, step 1 of 2: make the doomed column nullable.

DROP NOT NULL is catalog-only, and once the next release stops writing user_agent its
INSERTs still succeed (the column is left NULL).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0014_hazard_remove_field"),
    ]

    operations = [
        migrations.AlterField(
            model_name="comment",
            name="user_agent",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
    ]
