"""Which operations the project's database routers let run on an alias.

Django applies every migration through the alias ``migrate`` is given, and each
operation asks the routers (``allow_migrate``) whether it runs there: a model
operation for its model, ``RunPython``/``RunSQL`` with their ``hints``. An
operation the routers skip does nothing on that database, so nothing about it is
judged there; ``migration_audit --database OTHER`` judges it where it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def operation_routed(operation: Any, app_label: str, alias: str) -> bool:
    """Does ``operation`` (or, for SeparateDatabaseAndState, one of its database
    operations) run on ``alias``, by the project's routers?"""
    from django.db import router

    for op in _database_operations([operation]):
        model = getattr(op, "model_name", None) or getattr(op, "name", None)
        hints = dict(getattr(op, "hints", None) or {})
        if isinstance(model, str):
            hints.setdefault("model_name", model.lower())
        if router.allow_migrate(alias, app_label, **hints):
            return True
    return False


def routed_to(migration: Any, alias: str) -> bool:
    """Does any operation of ``migration`` run on ``alias``?"""
    return any(operation_routed(op, migration.app_label, alias) for op in migration.operations)


def _database_operations(operations: Iterable[Any]) -> Iterator[Any]:
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    for op in operations:
        if isinstance(op, SeparateDatabaseAndState):
            yield from _database_operations(op.database_operations)
        else:
            yield op
