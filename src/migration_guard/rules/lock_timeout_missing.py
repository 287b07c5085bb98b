"""A migration takes a blocking lock with no lock_timeout set."""

from __future__ import annotations

import dataclasses
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
    from ..results import MigrationResult

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
    It is a setting of the project, so it is said **once per run**: one finding,
    on the first migration of the change that requests such a lock, naming the
    others. Even a nullable ``AddField``, which holds its lock for milliseconds,
    is concerned. With the trace, locks that the SQL does not show are included
    too (dropping a foreign key takes ACCESS EXCLUSIVE on the referenced table,
    often ``auth_user``).

    **Lock.** The lock request itself. PostgreSQL grants locks in order: the
    ``ALTER TABLE`` waits behind any transaction that holds a conflicting lock
    on the table (a long report, a worker stuck in a transaction, an open
    ``psql`` session), and every later query on the table, plain ``SELECT``
    included when the request is ACCESS EXCLUSIVE, queues behind the waiting
    request. A brief lock becomes an outage lasting as long as the oldest
    transaction on the table.

    **Safe alternative.** Bound the wait and retry when it expires::

        # settings.py, with migration_guard in INSTALLED_APPS
        MIGRATION_GUARD = {"lock_timeout": "2s", "lock_retries": 5}

    ``manage.py migrate`` then never waits longer than that for a lock: a
    migration that times out is rolled back and retried with growing timeouts
    and jittered pauses (a non-atomic one, statement by statement), and every
    transaction in the way is named (``application_name``, state, age). See
    docs/deploy.md, the runbook for a busy database. Without the guard, bound the
    wait for every connection of the migrate command's database and retry the
    deploy by hand::

        DATABASES["default"]["OPTIONS"] = {"options": "-c lock_timeout=2s"}

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
        locks = requested_locks(migration)
        if locks:
            yield self.for_locks(ctx, migration, locks)

    @classmethod
    def for_locks(
        cls, ctx: RuleContext, migration: MigrationRecord, locks: list[Request]
    ) -> Finding:
        """The finding for ``migration``, whose blocking lock requests are ``locks``."""
        first = locks[0]
        op = migration.operations[first.op_index]
        tables = list(dict.fromkeys(lock.table for lock in locks))
        more = f" This migration also locks {', '.join(tables[1:])}." if tables[1:] else ""
        mode = lockmodes.sql_name(first.mode)
        message = (
            f"operations[{op.index}] {op.kind} asks for {mode} on {first.table} "
            f"({first.what}), which blocks {lockmodes.blocks(first.mode).value}, and no "
            "lock_timeout is set for migrations. If any transaction holds a lock on "
            f"{first.table} (a long report, a worker idle in a transaction), the request "
            f"waits for it, and every query on {first.table} queues behind the waiting "
            "request: a lock meant to last milliseconds blocks the table for as long as "
            f"the oldest transaction on it.{more}"
        )
        best: dict[str, str] = {}
        for lock in locks:
            if lock.table not in best or lockmodes.strength(lock.mode) > lockmodes.strength(
                best[lock.table]
            ):
                best[lock.table] = lock.mode
        return ctx.finding(
            cls(),
            op,
            message,
            FIX,
            table=first.table,
            sql=[first.sql] if first.sql else [],
            lock=first.mode,
            also=[(t, m) for t, m in best.items() if t != first.table],
        )

    @classmethod
    def once_per_run(cls, results: list[MigrationResult], where: str) -> list[MigrationResult]:
        """Keep one finding for the whole run, on the first migration that has one."""
        hosts = [(i, f) for i, r in enumerate(results) for f in r.findings if f.rule == cls.id]
        if not hosts:
            return results
        first_index, first = hosts[0]
        others = [f for _, f in hosts[1:]]
        listed = [
            f"{f.app_label}.{f.migration} ({lockmodes.sql_name(f.locks[0].mode)} on "
            f"{f.locks[0].relation})"
            if f.locks
            else f"{f.app_label}.{f.migration}"
            for f in others
        ]
        shown = listed[:5]
        if len(listed) > len(shown):
            shown.append(f"and {len(listed) - len(shown)} more")
        setting = f" No lock_timeout is configured ({where})."
        if listed:
            several = len(listed) != 1
            setting += (
                f" Said once for the run: {len(listed)} other migration{'s' if several else ''} "
                f"of it also request{'' if several else 's'} locks that block traffic on "
                f"existing tables: {', '.join(shown)}."
            )
        out = list(results)
        for index, result in enumerate(results):
            kept = tuple(
                f.replace(message=f.message + setting) if f is first else f
                for f in result.findings
                if f.rule != cls.id or f is first
            )
            if index == first_index or len(kept) != len(result.findings):
                out[index] = dataclasses.replace(result, findings=kept)
        return out


FIX = (
    "Set it once, in settings: MIGRATION_GUARD = {'lock_timeout': '2s', 'lock_retries': 5}. "
    "With migration_guard installed, manage.py migrate then waits at most that long for a "
    "lock, retries the migration with growing timeouts and pauses, and names the "
    "transactions in the way (django-migration-guard's docs/deploy.md). Without the guard: "
    "DATABASES[...]['OPTIONS'] = {'options': '-c lock_timeout=2s'}, and retry the deploy "
    "when it times out."
)


@dataclasses.dataclass(frozen=True)
class Request:
    """A blocking lock a migration requests on a table that existed before the change."""

    table: str
    mode: str
    what: str
    op_index: int
    sql: str | None = None
    #: Order of execution in the migration (deferred SQL runs last).
    seq: int = 0


def requested_locks(migration: MigrationRecord) -> list[Request] | None:
    """Blocking lock requests the SQL shows, in the order they run; None when the
    migration bounds its own waits first (``SET lock_timeout``).

    Deferred SQL runs when every operation is done, so its locks come last.
    """
    from ..collect import DEFERRED

    locks: list[Request] = []
    deferred: list[Request] = []
    for op in migration.operations:
        by_stmt: dict[int, list[_locks.TableLock]] = {}
        for lock in _locks.blocking_locks(op, migration):
            by_stmt.setdefault(id(lock.stmt), []).append(lock)
        for stmt in op.statements:
            found = [
                Request(lock.table, lock.mode, lock.what, lock.op_index, stmt.sql, stmt.seq)
                for lock in by_stmt.get(id(stmt), ())
            ]
            if stmt.origin == DEFERRED:  # runs when every operation is done
                deferred.extend(found)
                continue
            if not locks and sets_lock_timeout(stmt, migration.atomic):
                return None  # the migration sets its own before its first lock
            locks.extend(found)
    return locks + deferred
