"""Which table locks a statement takes, read from its SQL facts (not a rule).

The mapping follows the lock table of the design notes and PostgreSQL's
documentation ("Explicit Locking", and the lock level each command page
states). It is a lower bound: what the statement certainly takes on the tables
its text names. The trace observes the rest (for example the ACCESS EXCLUSIVE
that dropping a foreign key takes on the referenced table).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Blocks
from ..trace import locks as lockmodes

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, OperationRecord

ACCESS_EXCLUSIVE = "AccessExclusiveLock"
EXCLUSIVE = "ExclusiveLock"
SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
SHARE = "ShareLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
ROW_EXCLUSIVE = "RowExclusiveLock"

#: Statements that change rows (they take ROW EXCLUSIVE, which blocks no one).
DATA_KINDS = frozenset({sqlfacts.UPDATE, sqlfacts.DELETE, sqlfacts.INSERT})


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


def _action_mode(action: sqlfacts.AlterAction) -> str:
    if action.kind == sqlfacts.VALIDATE_CONSTRAINT:
        return SHARE_UPDATE_EXCLUSIVE
    if action.kind == sqlfacts.ADD_CONSTRAINT and action.constraint_type == sqlfacts.FOREIGN_KEY:
        return SHARE_ROW_EXCLUSIVE
    return ACCESS_EXCLUSIVE


def _action_name(action: sqlfacts.AlterAction) -> str:
    if action.kind == sqlfacts.ADD_CONSTRAINT and action.constraint_type:
        kind = action.constraint_type.replace("_", " ").upper()
        return f"ADD CONSTRAINT {kind}" + (" NOT VALID" if action.not_valid else "")
    if action.kind == sqlfacts.ACTION_OTHER:
        return "ALTER TABLE"
    return action.kind.replace("_", " ").upper()


def statement_locks(
    facts: sqlfacts.SqlStatement, op_table: str | None = None
) -> list[tuple[str, str, str]]:
    """``(table, mode, what)`` for the table locks ``facts`` takes, strongest per table.

    ``op_table`` is the operation's own table (Django operations): it names the
    table of a ``DROP INDEX``/``REINDEX INDEX``, whose text names only the index.
    """
    kind = facts.kind
    found: list[tuple[str, str, str]] = []

    def add(table: str | None, mode: str, what: str) -> None:
        if table:
            found.append((table, mode, what))

    if kind == sqlfacts.ALTER_TABLE:
        actions = facts.actions or (sqlfacts.AlterAction(sqlfacts.ACTION_OTHER),)
        strongest = max((_action_mode(a) for a in actions), key=lockmodes.strength)
        names = ", ".join(dict.fromkeys(_action_name(a) for a in actions))
        for table in facts.tables or (facts.table,):
            add(table, strongest, f"ALTER TABLE {names}")
        for action in actions:
            referenced = action.references or action.inline_references
            add(referenced, SHARE_ROW_EXCLUSIVE, "FOREIGN KEY (referenced table)")
    elif kind == sqlfacts.CREATE_INDEX:
        mode = SHARE_UPDATE_EXCLUSIVE if facts.concurrently else SHARE
        add(facts.table, mode, "CREATE INDEX" + (" CONCURRENTLY" if facts.concurrently else ""))
    elif kind == sqlfacts.DROP_INDEX:
        mode = SHARE_UPDATE_EXCLUSIVE if facts.concurrently else ACCESS_EXCLUSIVE
        add(op_table, mode, "DROP INDEX" + (" CONCURRENTLY" if facts.concurrently else ""))
    elif kind == sqlfacts.REINDEX:
        mode = SHARE_UPDATE_EXCLUSIVE if facts.concurrently else SHARE
        table = facts.table if facts.target == "TABLE" else op_table
        if facts.target in ("TABLE", "INDEX"):
            add(table, mode, "REINDEX")
    elif kind in (sqlfacts.DROP_TABLE, sqlfacts.TRUNCATE, sqlfacts.CLUSTER):
        what = {
            sqlfacts.DROP_TABLE: "DROP TABLE",
            sqlfacts.TRUNCATE: "TRUNCATE",
            sqlfacts.CLUSTER: "CLUSTER",
        }[kind]
        for table in facts.tables or (facts.table,):
            add(table, ACCESS_EXCLUSIVE, what)
    elif kind == sqlfacts.LOCK:
        try:
            mode = lockmodes.normalise(facts.lock_mode or "ACCESS EXCLUSIVE")
        except ValueError:
            mode = ACCESS_EXCLUSIVE
        for table in facts.tables or (facts.table,):
            add(table, mode, f"LOCK TABLE IN {lockmodes.sql_name(mode)} MODE")
    elif kind == sqlfacts.VACUUM:
        mode = ACCESS_EXCLUSIVE if facts.full else SHARE_UPDATE_EXCLUSIVE
        for table in facts.tables:
            add(table, mode, "VACUUM FULL" if facts.full else "VACUUM")
    elif kind == sqlfacts.REFRESH_MATVIEW:
        mode = EXCLUSIVE if facts.concurrently else ACCESS_EXCLUSIVE
        add(facts.table, mode, "REFRESH MATERIALIZED VIEW")
    elif kind == sqlfacts.CREATE_TRIGGER:
        add(facts.table, SHARE_ROW_EXCLUSIVE, "CREATE TRIGGER")
    elif kind == sqlfacts.RENAME and facts.target != "INDEX":
        add(facts.table, ACCESS_EXCLUSIVE, f"ALTER {facts.target} RENAME")
    elif kind in DATA_KINDS:
        for table in facts.tables or (facts.table,):
            add(table, ROW_EXCLUSIVE, kind.upper())
    # Strongest per table, first mention order.
    best: dict[str, tuple[str, str, str]] = {}
    for table, mode, what in found:
        if table not in best or lockmodes.strength(mode) > lockmodes.strength(best[table][1]):
            best[table] = (table, mode, what)
    return list(best.values())


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
