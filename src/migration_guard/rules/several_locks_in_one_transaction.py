"""Several blocking locks taken in one migration transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import MigrationRecord

_LEVEL = {"nothing": 0, "writes": 1, "reads and writes": 2}


def _level(mode: str) -> int:
    return _LEVEL[lockmodes.blocks(mode).value]


class SeveralLocksInOneTransaction(Rule):
    """An atomic migration holds a blocking lock while another operation does slow work.

    **What it flags.** An atomic migration (the default) in which two or more
    operations take locks that block reads or writes (ACCESS EXCLUSIVE,
    EXCLUSIVE, SHARE ROW EXCLUSIVE, SHARE: ``ALTER TABLE``, ``CREATE INDEX``,
    ``ADD CONSTRAINT``, ``LOCK TABLE``...) on tables that existed before the
    change, and one of them works through a whole table (an index build, a
    validated constraint, a scan or rewrite) while a lock taken by another
    operation is still held, on another table or, more blocking, on the same
    one::

        operations = [
            migrations.AddField("order", "note", models.TextField(null=True)),  # ACCESS EXCLUSIVE
            migrations.AddIndex("order", models.Index(fields=["created"], name="o_created")),
        ]

    Here reads of ``order`` stay blocked for the whole index build, which on
    its own only blocks writes. Brief operations together (two ``AddField``)
    are left to ``lock-timeout-missing``; tables created in the change and
    migrations with ``atomic = False`` are not flagged.

    **Lock.** PostgreSQL keeps every table lock until the transaction ends, and
    an atomic migration is one transaction: a lock taken by a brief operation
    lasts as long as the slowest operation after it, a time proportional to
    that table's size. Transactions of the application that lock the same
    tables in another order can also deadlock with the migration.

    **Safe alternative.** One migration per slow schema change, made
    concurrent or ``NOT VALID`` where PostgreSQL allows it, so each lock is
    released at its own commit::

        # 0007_order_note.py
        operations = [migrations.AddField("order", "note", models.TextField(null=True))]

        # 0008_order_created_index.py
        class Migration(migrations.Migration):
            atomic = False
            operations = [
                AddIndexConcurrently("order", models.Index(fields=["created"], name="o_created")),
            ]

    **References.** PostgreSQL, "Explicit Locking" (table-level locks are held
    until the end of the transaction; deadlocks):
    https://www.postgresql.org/docs/current/explicit-locking.html
    """

    id = "several-locks-in-one-transaction"
    severity = Severity.WARNING
    category = Category.LOCKING
    only_existing_tables = True
    #: Confirmed when the trace sees the lock this finding names (per finding) held on its
    #: table while the operation runs; SHARE is the weakest mode it ever reports.
    # About how long earlier locks are held, not about the work itself.
    predicts = Prediction(lock="ShareLock", explains_work=False)

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if not migration.atomic:
            return
        locks = [
            lock for op in migration.operations for lock in _locks.blocking_locks(op, migration)
        ]
        if len({lock.op_index for lock in locks}) < 2:
            return
        # Execution order: each operation's statements, then the SQL Django deferred.
        timeline = [lock for lock in locks if not lock.deferred] + [
            lock for lock in locks if lock.deferred
        ]
        for position, lock in enumerate(timeline):
            if not _locks.is_table_work(lock):
                continue
            held = self._extended(timeline[:position], timeline[: position + 1], lock)
            if held:
                yield self._finding(migration, lock, held, locks, ctx)
                return

    @staticmethod
    def _extended(
        before: list[_locks.TableLock], upto: list[_locks.TableLock], work: _locks.TableLock
    ) -> list[_locks.TableLock]:
        """Locks of other operations that ``work`` makes last longer than they would alone."""
        own_level: dict[str, int] = {}
        for lock in upto:
            if lock.op_index == work.op_index:
                own_level[lock.table] = max(own_level.get(lock.table, 0), _level(lock.mode))
        out = _locks.strongest_per_table(e for e in before if e.op_index != work.op_index)
        return [
            lock
            for table, lock in out.items()
            if table not in own_level or _level(lock.mode) > own_level[table]
        ]

    def _finding(
        self,
        migration: MigrationRecord,
        work: _locks.TableLock,
        held: list[_locks.TableLock],
        locks: list[_locks.TableLock],
        ctx: RuleContext,
    ) -> Finding:
        op = migration.operations[work.op_index]
        listing = []
        for index in sorted({e.op_index for e in locks}):
            per_table = _locks.strongest_per_table(e for e in locks if e.op_index == index)
            described = ", ".join(_locks.describe(e) for e in per_table.values())
            listing.append(f"operations[{index}] {migration.operations[index].kind}: {described}")
        extended = "; ".join(
            f"{_locks.blocked_text(h.mode)} of {h.table} "
            f"({lockmodes.sql_name(h.mode)} from operations[{h.op_index}] "
            f"{migration.operations[h.op_index].kind})"
            for h in held
        )
        message = (
            f"operations[{op.index}] {op.kind} works through the whole of {work.table} "
            f"({work.what}, a time proportional to its size) while locks taken earlier in this "
            f"atomic migration are still held, so {extended} stay blocked for all that time, "
            "not only for their own brief statement. Every lock is kept until the migration "
            f"commits ({'; '.join(listing)}), and transactions locking these tables in another "
            "order can deadlock with it."
        )
        fix = (
            f"Move operations[{op.index}] {op.kind} into a migration of its own (made "
            "concurrent or NOT VALID where possible: AddIndexConcurrently with atomic = False, "
            "constraints added NOT VALID then validated), so each lock is released at its own "
            "commit."
        )
        same_table = [h for h in held if h.table == work.table]
        return ctx.finding(
            self,
            op,
            message,
            fix,
            table=work.table,
            sql=[work.stmt.sql],
            lock=same_table[0].mode if same_table else work.mode,
        )
