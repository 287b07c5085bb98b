"""HAZARD add-unique-constraint: AlterUniqueTogether on the existing blog_post table.

Django adds a UNIQUE constraint, whose index is built without CONCURRENTLY under an
ACCESS EXCLUSIVE lock: blog_post can be neither read nor written during the build.
"""

from django.conf import settings
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("blog", "0006_hazard_alter_field_db_index"),
    ]

    operations = [
        migrations.AlterUniqueTogether(
            name="post",
            unique_together={("author", "slug")},
        ),
    ]
