from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import pre_migrate

#: MIGRATION_GUARD keys the deploy guard acts on (docs/deploy.md).
DEPLOY_KEYS = (
    "lock_timeout",
    "lock_retries",
    "lock_retry_backoff",
    "statement_timeout",
    "transaction_timeout",
    "blocker_report",
    "preflight_transaction_age",
)
#: Session settings the pre_migrate fallback applies.
SESSION_KEYS = ("lock_timeout", "statement_timeout", "transaction_timeout")


class MigrationGuardConfig(AppConfig):
    name = "migration_guard"
    verbose_name = "Migration guard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        pre_migrate.connect(set_lock_timeout, dispatch_uid="migration_guard.set_lock_timeout")
        checks.register(check_migrate_command)


def set_lock_timeout(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """Apply ``MIGRATION_GUARD``'s timeouts to the connection ``migrate`` uses (fallback).

    The app's own ``migrate`` command applies every deploy setting itself
    (retries, blocker report: docs/deploy.md) and this receiver then stands
    aside. When another app's ``migrate`` command wins (check W001), this still
    bounds lock waits: ``lock_timeout``, ``statement_timeout`` and, on
    PostgreSQL 17+, ``transaction_timeout``, session-level, PostgreSQL only.
    """
    from django.conf import settings
    from django.db import connections

    from .conf import _convert
    from .deploy.running import is_running

    if is_running():
        return
    raw = getattr(settings, "MIGRATION_GUARD", None) or {}
    values = {
        key: _convert(key, raw[key], "settings.MIGRATION_GUARD")
        for key in SESSION_KEYS
        if raw.get(key)
    }
    if not values:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    connection.ensure_connection()
    if getattr(connection, "pg_version", 0) < 170000:
        values.pop("transaction_timeout", None)
    with connection.cursor() as cursor:
        for key, value in values.items():
            cursor.execute("SELECT set_config(%s, %s, false)", [key, str(value)])


def check_migrate_command(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """W001: the deploy settings are set but another app's ``migrate`` command wins."""
    from django.conf import settings
    from django.core.management import get_commands

    raw = getattr(settings, "MIGRATION_GUARD", None) or {}
    if not isinstance(raw, dict) or not any(key in raw for key in DEPLOY_KEYS):
        return []
    owner = get_commands().get("migrate")
    if owner == MigrationGuardConfig.name:
        return []
    return [
        checks.Warning(
            f"manage.py migrate is the command of {owner!r}, not migration_guard's: "
            "MIGRATION_GUARD's lock retries and blocker report do not apply to it (only "
            "its timeouts do).",
            hint=(
                f"List 'migration_guard' before {owner!r} in INSTALLED_APPS, or run the "
                "deploy's migrations with that app removed; see docs/deploy.md."
            ),
            id="migration_guard.W001",
        )
    ]
