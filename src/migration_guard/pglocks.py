"""PostgreSQL's table locks: modes, conflicts, what each blocks, and which a statement takes.

A neutral module: the rules (predictions), the trace (observations) and the
judge all read their lock facts here, and it imports none of them.

The conflict table is PostgreSQL's own (documentation, "Table-Level Locks").
What a mode *blocks* for an application is read off it: a mode that conflicts
with ACCESS SHARE (taken by SELECT) blocks reads; one that conflicts with ROW
EXCLUSIVE (taken by INSERT/UPDATE/DELETE) blocks writes.

:func:`statement_locks` follows the lock table of the design notes and
PostgreSQL's documentation ("Explicit Locking", and the lock level each command
page states). It is a lower bound: what the statement certainly takes on the
tables its text names. The trace observes the rest (for example the ACCESS
EXCLUSIVE that dropping a foreign key takes on the referenced table).
"""

from __future__ import annotations

from . import sqlfacts
from .findings import Blocks

#: Modes from weakest to strongest, as ``pg_locks.mode`` spells them.
MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)

_CONFLICTS: dict[str, frozenset[str]] = {
    "AccessShareLock": frozenset({"AccessExclusiveLock"}),
    "RowShareLock": frozenset({"ExclusiveLock", "AccessExclusiveLock"}),
    "RowExclusiveLock": frozenset(
        {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
    ),
    "ShareUpdateExclusiveLock": frozenset(
        {
            "ShareUpdateExclusiveLock",
            "ShareLock",
            "ShareRowExclusiveLock",
            "ExclusiveLock",
            "AccessExclusiveLock",
        }
    ),
    "ShareLock": frozenset(
        {
            "RowExclusiveLock",
            "ShareUpdateExclusiveLock",
            "ShareRowExclusiveLock",
            "ExclusiveLock",
            "AccessExclusiveLock",
        }
    ),
    "ShareRowExclusiveLock": frozenset(
        {
            "RowExclusiveLock",
            "ShareUpdateExclusiveLock",
            "ShareLock",
            "ShareRowExclusiveLock",
            "ExclusiveLock",
            "AccessExclusiveLock",
        }
    ),
    "ExclusiveLock": frozenset(MODES[1:]),
    "AccessExclusiveLock": frozenset(MODES),
}

#: SQL spelling, for messages: "AccessExclusiveLock" -> "ACCESS EXCLUSIVE".
SQL_NAMES = {
    "AccessShareLock": "ACCESS SHARE",
    "RowShareLock": "ROW SHARE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
}
_BY_SQL_NAME = {v: k for k, v in SQL_NAMES.items()}


def normalise(mode: str) -> str:
    """Accept ``ACCESS EXCLUSIVE``, ``access exclusive`` or ``AccessExclusiveLock``."""
    if mode in _CONFLICTS:
        return mode
    key = " ".join(mode.upper().replace("_", " ").split())
    if key.endswith(" MODE"):
        key = key[: -len(" MODE")]
    if key in _BY_SQL_NAME:
        return _BY_SQL_NAME[key]
    raise ValueError(f"unknown lock mode {mode!r}")


def conflicts(a: str, b: str) -> bool:
    return normalise(b) in _CONFLICTS[normalise(a)]


def blocks(mode: str) -> Blocks:
    mode = normalise(mode)
    if conflicts(mode, "AccessShareLock"):
        return Blocks.READS_AND_WRITES
    if conflicts(mode, "RowExclusiveLock"):
        return Blocks.WRITES
    return Blocks.NOTHING


def strength(mode: str) -> int:
    return MODES.index(normalise(mode))


def strongest(modes: list[str] | tuple[str, ...] | set[str]) -> str | None:
    return max(modes, key=strength) if modes else None


def sql_name(mode: str) -> str:
    return SQL_NAMES[normalise(mode)]


def blocking_text(mode: str) -> str:
    """What other sessions cannot do on the table while ``mode`` is held, for people.

    ROW EXCLUSIVE (UPDATE, DELETE, INSERT) conflicts with no lock that reads or
    writes take, but the rows it changes stay locked until the transaction ends:
    writes to those rows wait. Saying "blocks nothing" there would contradict any
    text about waiting writers.
    """
    b = blocks(mode)
    if b is not Blocks.NOTHING:
        return f"blocks {b.value}"
    if normalise(mode) == "RowExclusiveLock":
        return "blocks no reads; writes to the rows it changes wait until it commits"
    return "blocks nothing"


def describe_blocking(mode: str) -> str:
    """``"ACCESS EXCLUSIVE (blocks reads and writes)"``."""
    return f"{sql_name(mode)} ({blocking_text(mode)})"


# --- which locks a statement takes ----------------------------------------------

ACCESS_EXCLUSIVE = "AccessExclusiveLock"
EXCLUSIVE = "ExclusiveLock"
SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
SHARE = "ShareLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
ROW_EXCLUSIVE = "RowExclusiveLock"

#: Statements that change rows (they take ROW EXCLUSIVE, which blocks no one).
DATA_KINDS = frozenset({sqlfacts.UPDATE, sqlfacts.DELETE, sqlfacts.INSERT})


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
        strongest = max((_action_mode(a) for a in actions), key=strength)
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
            mode = normalise(facts.lock_mode or "ACCESS EXCLUSIVE")
        except ValueError:
            mode = ACCESS_EXCLUSIVE
        for table in facts.tables or (facts.table,):
            add(table, mode, f"LOCK TABLE IN {sql_name(mode)} MODE")
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
        if table not in best or strength(mode) > strength(best[table][1]):
            best[table] = (table, mode, what)
    return list(best.values())
