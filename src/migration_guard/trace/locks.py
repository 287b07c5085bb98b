"""PostgreSQL table lock modes, their conflicts, and what they mean for other sessions.

The conflict table is PostgreSQL's own (documentation, "Table-Level Locks").
What a mode *blocks* for an application is read off it: a mode that conflicts
with ACCESS SHARE (taken by SELECT) blocks reads; one that conflicts with ROW
EXCLUSIVE (taken by INSERT/UPDATE/DELETE) blocks writes.
"""

from __future__ import annotations

from ..findings import Blocks

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


def describe_blocking(mode: str) -> str:
    """``"ACCESS EXCLUSIVE (blocks reads and writes)"``."""
    b = blocks(mode)
    what = "blocks nothing" if b is Blocks.NOTHING else f"blocks {b.value}"
    return f"{sql_name(mode)} ({what})"
