"""HAZARD run-python-no-reverse: RunPython without reverse_code (IRREVERSIBLE by design).

Lower-casing e-mail addresses cannot be undone, and without reverse_code Django refuses to
unapply this migration: a rollback of this release cannot go back past it.
"""

from django.db import migrations
from django.db.models.functions import Lower


def lowercase_emails(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.using(schema_editor.connection.alias).exclude(email="").update(
        email=Lower("email")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0010_safe_run_python_with_reverse"),
    ]

    operations = [
        migrations.RunPython(lowercase_emails),
    ]
