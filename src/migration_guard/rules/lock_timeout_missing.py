"""A migration takes a blocking lock with no lock_timeout set."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord

#: ``SET [SESSION|LOCAL] lock_timeout = '5s'`` / ``TO 5000`` / ``set_config('lock_timeout', ...)``.
_SET_LOCK_TIMEOUT = re.compile(
    r"^\s*SET\s+(?P<local>LOCAL\s+)?(?:SESSION\s+)?lock_timeout\s*(?:=|\bTO\b)\s*(?P<value>\S+)",
    re.IGNORECASE,
)
_SET_CONFIG = re.compile(
    r"set_config\s*\(\s*'lock_timeout'\s*,\s*'(?P<value>[^']*)'\s*,\s*(?P<local>\w+)",
    re.IGNORECASE,
)
_OFF = frozenset({"0", "'0'", "default", "'0s'", "'0ms'"})


def sets_lock_timeout(stmt: ExecutedStatement, atomic: bool) -> bool:
    """The statement turns a lock timeout on for the rest of the migration."""
    text = stmt.sql
    match = _SET_LOCK_TIMEOUT.match(text) if stmt.facts.kind == sqlfacts.SET else None
    if match is None:
        match = _SET_CONFIG.search(text)
        if match is None:
            return False
        local = match.group("local").lower() in ("true", "t", "on", "1")
        value = f"'{match.group('value')}'"
    else:
        local = bool(match.group("local"))
        value = match.group("value").rstrip(";")
    if value.lower() in _OFF:
        return False
    # SET LOCAL lasts for the transaction: with atomic = False each statement is its own.
    return atomic or not local


class LockTimeoutMissing(Rule):
    """A lock that blocks traffic is requested with no lock_timeout to bound the wait.

    **What it flags.** A migration that takes a lock blocking reads or writes
    (ACCESS EXCLUSIVE, EXCLUSIVE, SHARE ROW EXCLUSIVE or SHARE: almost every
    ``ALTER TABLE``, ``CREATE INDEX``, ``DROP INDEX``, foreign keys, ``LOCK
    TABLE``...) on a table that existed before the change, while no
    ``lock_timeout`` is configured for migrations: neither
    ``MIGRATION_GUARD["lock_timeout"]`` (which migration_guard applies to
    ``manage.py migrate``), nor ``-c lock_timeout=...`` in the database
    ``OPTIONS``, nor a ``SET lock_timeout`` in the migration before the lock.
    One finding per migration, at its first such operation. Even a nullable
    ``AddField``, which holds its lock for milliseconds, is concerned.

    **Lock.** The lock request itself. PostgreSQL grants locks in order: the
    ``ALTER TABLE`` waits behind any transaction that holds a conflicting lock
    on the table (a long report, a worker stuck in a transaction, an open
    ``psql`` session), and every later query on the table, plain ``SELECT``
    included when the request is ACCESS EXCLUSIVE, queues behind the waiting
    request. A brief lock becomes an outage lasting as long as the oldest
    transaction on the table.

    **Safe alternative.** Bound the wait and retry the deploy when it expires::

        # settings.py
        MIGRATION_GUARD = {"lock_timeout": "5s"}
        # or, for every connection of the migrate command's database:
        DATABASES["default"]["OPTIONS"] = {"options": "-c lock_timeout=5s"}

    **References.** PostgreSQL, "Client Connection Defaults", ``lock_timeout``:
    https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT ;
    "Explicit Locking": https://www.postgresql.org/docs/current/explicit-locking.html
    """

    id = "lock-timeout-missing"
    severity = Severity.WARNING
    category = Category.LOCKING
    only_existing_tables = True
    predicts = None

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if ctx.lock_timeout_configured:
            return
        from ..collect import DEFERRED

        locks: list[_locks.TableLock] = []
        deferred: list[_locks.TableLock] = []
        for op in migration.operations:
            by_stmt: dict[int, list[_locks.TableLock]] = {}
            for lock in _locks.blocking_locks(op, migration):
                by_stmt.setdefault(id(lock.stmt), []).append(lock)
            for stmt in op.statements:
                if stmt.origin == DEFERRED:  # runs when every operation is done
                    deferred.extend(by_stmt.get(id(stmt), ()))
                    continue
                if not locks and sets_lock_timeout(stmt, migration.atomic):
                    return  # the migration sets its own before its first lock
                locks.extend(by_stmt.get(id(stmt), ()))
        locks.extend(deferred)
        if not locks:
            return
        first = locks[0]
        op = migration.operations[first.op_index]
        tables = list(dict.fromkeys(lock.table for lock in locks))
        more = f" This migration also locks {', '.join(tables[1:])}." if tables[1:] else ""
        mode = lockmodes.sql_name(first.mode)
        message = (
            f"operations[{op.index}] {op.kind} asks for {mode} on {first.table} "
            f"({first.what}), which blocks {_locks.blocked_text(first.mode)}, and no "
            "lock_timeout is set for migrations. If any transaction holds a lock on "
            f"{first.table} (a long report, a worker idle in a transaction), the request "
            f"waits for it, and every query on {first.table} queues behind the waiting "
            "request: a lock meant to last milliseconds blocks the table for as long as "
            f"the oldest transaction on it.{more}"
        )
        fix = (
            "Set a lock timeout for migrations (MIGRATION_GUARD = {'lock_timeout': '5s'}, "
            "which migration_guard applies to manage.py migrate, or OPTIONS = "
            "{'options': '-c lock_timeout=5s'}) and retry the deploy when it times out."
        )
        yield ctx.finding(
            self, op, message, fix, table=first.table, sql=[first.stmt.sql], lock=first.mode
        )
