from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import pre_migrate


class MigrationGuardConfig(AppConfig):
    name = "migration_guard"
    verbose_name = "Migration guard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        pre_migrate.connect(set_lock_timeout, dispatch_uid="migration_guard.set_lock_timeout")


def set_lock_timeout(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Apply ``MIGRATION_GUARD["lock_timeout"]`` to the connection ``migrate`` uses.

    A DDL statement that waits for a lock makes every later query on the table
    wait behind it; with a lock timeout the migration fails fast instead, and
    the deploy can be retried. Session-level, PostgreSQL only.
    """
    from django.conf import settings
    from django.db import connections

    value = (getattr(settings, "MIGRATION_GUARD", None) or {}).get("lock_timeout")
    if not value:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [str(value)])
