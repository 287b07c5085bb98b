"""HAZARD rename-model: RenameModel renames the table accounts_invitation to accounts_invite.

ALTER TABLE ... RENAME takes an ACCESS EXCLUSIVE lock, and the previous release still
queries accounts_invitation: every invitation query fails until it is replaced.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_safe_rename_field_state_only"),
    ]

    operations = [
        migrations.RenameModel(
            old_name="Invitation",
            new_name="Invite",
        ),
    ]
