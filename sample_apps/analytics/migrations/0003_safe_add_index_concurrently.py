"""SAFE counterpart on the second database: AddIndexConcurrently in a non-atomic migration."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("analytics", "0002_hazard_add_index_non_concurrent"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="pageview",
            index=models.Index(fields=["viewed_at"], name="analytics_viewed_idx"),
        ),
    ]
