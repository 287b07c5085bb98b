"""SAFE counterpart of run-python-no-reverse: a data migration with a real reverse function.

Every user gets a profile; unapplying deletes only the profiles this migration could have
created (still untouched), so the migration can be rolled back.
"""

from django.db import migrations


def create_missing_profiles(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    Profile = apps.get_model("accounts", "Profile")
    db = schema_editor.connection.alias
    Profile.objects.using(db).bulk_create(
        [
            Profile(user=user, display_name=user.username)
            for user in User.objects.using(db).filter(profile__isnull=True).iterator()
        ],
        batch_size=500,
    )


def delete_untouched_profiles(apps, schema_editor):
    Profile = apps.get_model("accounts", "Profile")
    db = schema_editor.connection.alias
    untouched = Profile.objects.using(db).filter(
        about="", phone_number="", website="", referred_by__isnull=True
    )
    for profile in untouched.select_related("user").iterator():
        if profile.display_name == profile.user.username:
            profile.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_hazard_alter_db_table"),
    ]

    operations = [
        migrations.RunPython(create_missing_profiles, delete_untouched_profiles),
    ]
