"""SAFE counterpart of add-foreign-key-validating, step 1 of 3: column + FOREIGN KEY ... NOT VALID.

A NOT VALID foreign key is only enforced for new rows: no scan of shop_customer or
accounts_user, the locks are held for milliseconds. Django's state gets the ForeignKey.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("shop", "0006_safe_remove_index_concurrently"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="customer",
                    name="account_manager",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="managed_customers",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    sql=[
                        "ALTER TABLE shop_customer ADD COLUMN account_manager_id bigint NULL",
                        "ALTER TABLE shop_customer ADD CONSTRAINT shop_customer_account_manager_id_fk "
                        "FOREIGN KEY (account_manager_id) REFERENCES accounts_user (id) "
                        "DEFERRABLE INITIALLY DEFERRED NOT VALID",
                    ],
                    reverse_sql="ALTER TABLE shop_customer DROP COLUMN account_manager_id",
                ),
            ],
        ),
    ]
