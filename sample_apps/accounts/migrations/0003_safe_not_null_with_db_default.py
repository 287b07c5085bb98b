"""SAFE counterpart of not-null-without-db-default: the column keeps a real DEFAULT in the database.

A constant DEFAULT is a catalog-only change on PostgreSQL 11+ (no rewrite), and INSERTs from
the previous release still succeed because the database fills the column in. Written with
RunSQL because ``db_default`` only exists on Django 5.0+.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_hazard_not_null_without_db_default"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="user",
                    name="failed_login_count",
                    field=models.IntegerField(default=0, verbose_name="failed login attempts"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql="ALTER TABLE accounts_user ADD COLUMN failed_login_count integer DEFAULT 0 NOT NULL",
                    reverse_sql="ALTER TABLE accounts_user DROP COLUMN failed_login_count",
                ),
            ],
        ),
    ]
