"""SAFE counterpart of set-not-null, step 2 of 2: VALIDATE, then SET NOT NULL, then DROP CHECK.

VALIDATE scans under SHARE UPDATE EXCLUSIVE (reads and writes go on); PostgreSQL 12+
then uses the validated CHECK to SET NOT NULL without another scan.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("blog", "0009_safe_set_not_null_check_not_valid"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="post",
                    name="summary",
                    field=models.TextField(blank=True),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        "ALTER TABLE blog_post VALIDATE CONSTRAINT blog_post_summary_not_null",
                        "ALTER TABLE blog_post ALTER COLUMN summary SET NOT NULL",
                        "ALTER TABLE blog_post DROP CONSTRAINT blog_post_summary_not_null",
                    ],
                    reverse_sql=[
                        "ALTER TABLE blog_post ALTER COLUMN summary DROP NOT NULL",
                        "ALTER TABLE blog_post ADD CONSTRAINT blog_post_summary_not_null "
                        "CHECK (summary IS NOT NULL) NOT VALID",
                    ],
                ),
            ],
        ),
    ]
