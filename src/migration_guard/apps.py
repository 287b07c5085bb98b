from django.apps import AppConfig


class MigrationGuardConfig(AppConfig):
    name = "migration_guard"
    verbose_name = "Migration guard"
    default_auto_field = "django.db.models.BigAutoField"
