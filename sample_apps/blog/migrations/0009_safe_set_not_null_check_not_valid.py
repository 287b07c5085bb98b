"""SAFE counterpart of set-not-null, step 1 of 2: CHECK (summary IS NOT NULL) NOT VALID.

A NOT VALID check constraint is added without scanning blog_post (ACCESS EXCLUSIVE held
for milliseconds); from now on it rejects new NULLs.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0008_hazard_set_not_null"),
    ]

    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE blog_post ADD CONSTRAINT blog_post_summary_not_null "
                "CHECK (summary IS NOT NULL) NOT VALID"
            ),
            reverse_sql="ALTER TABLE blog_post DROP CONSTRAINT blog_post_summary_not_null",
        ),
    ]
