"""Looking inside Django operations (not a rule)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def database_operations(operation: Any) -> Iterator[Any]:
    """``operation`` itself, or what it runs on the database when it wraps others.

    ``SeparateDatabaseAndState`` runs its ``database_operations`` (recursively);
    its ``state_operations`` never touch the database.
    """
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    if isinstance(operation, SeparateDatabaseAndState):
        for inner in operation.database_operations:
            yield from database_operations(inner)
    else:
        yield operation


def previous_migration(migration: Any) -> str:
    """The name to pass to ``migrate <app> <name>`` to unapply ``migration``."""
    for app_label, name in getattr(migration, "dependencies", ()):
        if app_label == migration.app_label and name != "__first__":
            return str(name)
    return "zero"


def callable_name(func: Any) -> str:
    return str(getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or func)
