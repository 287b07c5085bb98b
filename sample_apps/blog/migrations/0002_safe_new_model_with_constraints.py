"""SAFE (nothing to flag): a new table gets its FK, index and unique constraint in the same migration.

blog_series is created by this very migration and is still empty, so building its index,
unique constraint and foreign keys locks nobody out: no existing table is touched.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("blog", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="Series",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("title", models.CharField(max_length=200)),
                ("slug", models.SlugField(max_length=200)),
                ("description", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("posts", models.ManyToManyField(blank=True, related_name="series", to="blog.post")),
            ],
            options={
                "verbose_name": "series",
                "verbose_name_plural": "series",
                "ordering": ["title"],
            },
        ),
        migrations.AddField(
            model_name="series",
            name="owner",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="owned_series",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddIndex(
            model_name="series",
            index=models.Index(fields=["owner", "-created_at"], name="blog_series_owner_recent_idx"),
        ),
        migrations.AddConstraint(
            model_name="series",
            constraint=models.UniqueConstraint(
                fields=("owner", "slug"), name="blog_series_unique_slug_per_owner"
            ),
        ),
    ]
