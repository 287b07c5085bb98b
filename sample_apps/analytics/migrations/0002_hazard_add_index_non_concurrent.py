"""HAZARD add-index-non-concurrent, on the second database: AddIndex on the busy
analytics_pageview table of ``DATABASES["analytics"]``.

The router sends this app's migrations to the ``analytics`` alias, so ``migrate
--database analytics`` runs it, and ``migration_audit --database analytics`` audits it.
CREATE INDEX without CONCURRENTLY blocks every write of page views during the build.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="pageview",
            index=models.Index(fields=["path", "viewed_at"], name="analytics_path_viewed_idx"),
        ),
    ]
