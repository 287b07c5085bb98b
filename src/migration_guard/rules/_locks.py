"""The table locks an operation's statements take, as the rules look at them.

Which lock a statement takes is a PostgreSQL fact and lives in
:mod:`migration_guard.pglocks`; this module applies it to recorded operations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Blocks
from ..pglocks import (  # noqa: F401  (re-exported for the rules)
    ACCESS_EXCLUSIVE,
    DATA_KINDS,
    EXCLUSIVE,
    ROW_EXCLUSIVE,
    SHARE,
    SHARE_ROW_EXCLUSIVE,
    SHARE_UPDATE_EXCLUSIVE,
    statement_locks,
)

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, OperationRecord


@dataclasses.dataclass(frozen=True)
class TableLock:
    """A lock one statement of an operation takes on one table."""

    table: str
    #: pg_locks spelling, e.g. ``AccessExclusiveLock``.
    mode: str
    op_index: int
    stmt: ExecutedStatement
    #: What the statement is, for messages ("ADD COLUMN", "CREATE INDEX", "LOCK TABLE"...).
    what: str

    @property
    def blocks(self) -> Blocks:
        return lockmodes.blocks(self.mode)

    @property
    def deferred(self) -> bool:
        from ..collect import DEFERRED

        return self.stmt.origin == DEFERRED


def operation_locks(op: OperationRecord) -> Iterator[TableLock]:
    """Every table lock the operation's statements take (any table, any mode)."""
    for stmt in op.statements:
        for table, mode, what in statement_locks(stmt.facts, op.table):
            yield TableLock(table, mode, op.index, stmt, what)


def blocking_locks(op: OperationRecord, migration: MigrationRecord) -> list[TableLock]:
    """Locks of ``op`` that block reads or writes on tables that existed before the change."""
    return [
        lock
        for lock in operation_locks(op)
        if lock.blocks is not Blocks.NOTHING and migration.is_existing(lock.table)
    ]


def strongest_per_table(locks: Iterable[TableLock]) -> dict[str, TableLock]:
    """The strongest lock per table, tables in first-lock order."""
    out: dict[str, TableLock] = {}
    for lock in locks:
        held = out.get(lock.table)
        if held is None or lockmodes.strength(lock.mode) > lockmodes.strength(held.mode):
            out[lock.table] = lock
    return out


def strongest_per_op(locks: Iterable[TableLock]) -> list[TableLock]:
    """The strongest lock of each operation, in operation order."""
    out: dict[int, TableLock] = {}
    for lock in locks:
        held = out.get(lock.op_index)
        if held is None or lockmodes.strength(lock.mode) > lockmodes.strength(held.mode):
            out[lock.op_index] = lock
    return [out[i] for i in sorted(out)]


def describe(lock: TableLock) -> str:
    """``"ACCESS EXCLUSIVE on blog_post (ALTER TABLE ADD COLUMN)"``."""
    return f"{lockmodes.sql_name(lock.mode)} on {lock.table} ({lock.what})"


def blocked_text(mode: str) -> str:
    """``"reads and writes"`` or ``"writes"``."""
    return lockmodes.blocks(mode).value


def executed(op: OperationRecord, *, orm: bool = False) -> Iterator[ExecutedStatement]:
    """The operation's emitted SQL (Django's, RunSQL's, deferred); with ``orm``, also the
    raw queries RunPython code ran (``cursor.execute``), as far as they were kept."""
    yield from op.statements
    if orm:
        yield from op.orm_statements


def existing_tables(facts: sqlfacts.SqlStatement, migration: MigrationRecord) -> list[str]:
    """Tables the statement names that existed before the change, in order."""
    names = facts.tables or ((facts.table,) if facts.table else ())
    return [t for t in dict.fromkeys(names) if migration.is_existing(t)]


_SLOW_CONSTRAINTS = frozenset(
    {
        sqlfacts.CHECK,
        sqlfacts.FOREIGN_KEY,
        sqlfacts.UNIQUE,
        sqlfacts.PRIMARY_KEY,
        sqlfacts.EXCLUDE,
        sqlfacts.NOT_NULL,
    }
)


def _slow_action(action: sqlfacts.AlterAction) -> bool:
    if action.kind == sqlfacts.ADD_CONSTRAINT:
        return (
            action.constraint_type in _SLOW_CONSTRAINTS
            and not action.not_valid
            and not action.using_index
        )
    if action.kind == sqlfacts.ADD_COLUMN:
        return (
            action.identity
            or action.generated_stored
            or action.inline_check
            or action.inline_unique
            or action.inline_primary_key
        )
    return False


def is_table_work(lock: TableLock) -> bool:
    """The statement works through the whole of ``lock.table`` (scan, rewrite, index build).

    Certain from the SQL for index builds, validated constraints, VACUUM FULL,
    CLUSTER, REINDEX...; for the rest (SET NOT NULL, ALTER TYPE, volatile
    defaults) from what the trace saw the statement do to the table.
    """
    facts = lock.stmt.facts
    kind = facts.kind
    if kind == sqlfacts.CREATE_INDEX and not facts.concurrently and facts.table == lock.table:
        return True
    if kind in (sqlfacts.CLUSTER, sqlfacts.REFRESH_MATVIEW) or (
        kind == sqlfacts.VACUUM and facts.full
    ):
        return True
    if kind == sqlfacts.REINDEX and not facts.concurrently:
        return True
    if (
        kind == sqlfacts.ALTER_TABLE
        and facts.table == lock.table
        and any(_slow_action(a) for a in facts.actions)
    ):
        return True
    observation = lock.stmt.observation
    # Only the statement's own table: a foreign key may scan the table it references.
    if observation is not None and lock.table in (facts.table, *facts.tables):
        scanned = {table for table, _ in observation.scans}
        return lock.table in observation.rewrites or lock.table in scanned
    return False
