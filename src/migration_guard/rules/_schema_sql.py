"""Helpers shared by the column, type and compatibility rules (not a rule).

``parsed`` and ``actions`` are the base helpers under the names these rules
use: every recorded statement is one statement (Django's multi-statement
strings are split when they are recorded).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import sqlfacts
from ..sqlfacts import SqlStatement
from ._operations import database_operations
from .base import alter_actions as actions
from .base import statements as parsed

__all__ = [
    "actions",
    "column_type_in_state",
    "database_kinds",
    "database_operations",
    "ident",
    "made_earlier",
    "migration_statements",
    "parsed",
    "state_knows",
    "view_named",
    "without_strings",
]

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, OperationRecord


def migration_statements(
    record: MigrationRecord,
) -> Iterator[tuple[OperationRecord, ExecutedStatement, SqlStatement]]:
    """Every statement of the migration, in the order the operations emitted them."""
    for op in record.operations:
        for stmt, facts in parsed(op):
            yield op, stmt, facts


def database_kinds(op: OperationRecord) -> set[str]:
    """Class names of the operations that act on the database for ``op``."""
    return {type(o).__name__ for o in database_operations(op.operation)}


def ident(name: str) -> str:
    """A regex matching ``name`` as a SQL identifier, quoted or not."""
    return rf'(?:"{re.escape(name)}"|\b{re.escape(name)}\b)'


_STRINGS = re.compile(r"'(?:[^']|'')*'")


def without_strings(text: str) -> str:
    """``text`` with its single-quoted literals emptied (so names in them do not match)."""
    return _STRINGS.sub("''", text)


def view_named(record: MigrationRecord, name: str) -> bool:
    """A view called ``name`` is created in the migration (the old name kept for old code)."""
    pattern = re.compile(
        r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:RECURSIVE\s+)?VIEW\s+"
        rf"(?:\w+\.)?{ident(name)}",
        re.IGNORECASE,
    )
    return any(pattern.search(facts.text) for _, _, facts in migration_statements(record))


def column_type_in_state(state: Any, table: str, column: str) -> str | None:
    """The database type Django's ``state`` gives ``table.column`` (None when unknown)."""
    if state is None:
        return None
    connection = _postgres_connection()
    if connection is None:
        return None
    try:
        models = state.apps.get_models()
    except Exception:
        return None
    for model in models:
        if model._meta.db_table != table:
            continue
        for field in model._meta.local_fields:
            if getattr(field, "column", None) == column:
                try:
                    db_type = field.db_type(connection)
                except Exception:
                    return None
                return str(db_type) if db_type else None
    return None


def _state_tables(state: Any) -> dict[str, set[str]] | None:
    """Table -> columns of every model in Django's ``state`` (None when unknown)."""
    if state is None:
        return None
    try:
        models = state.apps.get_models(include_auto_created=True)
    except Exception:
        return None
    live = set(models)
    tables: dict[str, set[str]] = {}
    for model in models:
        owner = model._meta.auto_created
        if owner and not _owned_through(model, owner, live):
            continue  # the join table of a model or field the state no longer has
        columns = {getattr(f, "column", None) for f in model._meta.local_fields}
        tables.setdefault(model._meta.db_table, set()).update(c for c in columns if c)
    return tables


def _owned_through(model: Any, owner: Any, live: set[Any]) -> bool:
    """An auto-created join model still belongs to a many-to-many field of the state.

    StateApps keeps the join model registered after its model or field left the
    state, so the registry alone would still know its table.
    """
    if owner not in live:
        return False
    return any(
        getattr(getattr(f, "remote_field", None), "through", None) is model
        for f in owner._meta.local_many_to_many
    )


def state_knows(op: OperationRecord, table: str, column: str | None = None) -> bool:
    """Django's state before ``op`` still has ``table`` (and ``column``).

    A drop of something the state no longer has is the contract step of an
    expand/contract: the previous release no longer uses it. Unknown: True.
    """
    tables = _state_tables(op.from_state)
    if tables is None:
        return True
    if table not in tables:
        return False
    return column is None or column in tables[table]


def _postgres_connection() -> Any:
    from django.db import DEFAULT_DB_ALIAS, connections

    try:
        default = connections[DEFAULT_DB_ALIAS]
        if default.vendor == "postgresql":
            return default
        for connection in connections.all():
            if connection.vendor == "postgresql":
                return connection
    except Exception:
        return None
    return None


def made_earlier(
    record: MigrationRecord, op: OperationRecord, table: str, column: str | None = None
) -> bool:
    """The migration created ``table`` (or added ``table.column``) before ``op``.

    The previous release cannot know such a table or column, whatever the change holds.
    """
    for earlier in record.operations:
        if earlier.index >= op.index:
            break
        for _, facts in parsed(earlier):
            if facts.table != table:
                continue
            if facts.kind == sqlfacts.CREATE_TABLE:
                return True
            if column is not None and facts.kind == sqlfacts.ALTER_TABLE:
                for action in facts.actions:
                    if action.kind == sqlfacts.ADD_COLUMN and action.column == column:
                        return True
    return False
