"""A data migration that runs while the same transaction holds a DDL lock."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from ._operations import database_operations
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import MigrationRecord, OperationRecord

_SELECT = re.compile(r"\bselect\b", re.IGNORECASE)


def is_bulk_data_statement(facts: sqlfacts.SqlStatement) -> bool:
    """UPDATE, DELETE, or INSERT ... SELECT: work proportional to the rows it touches."""
    if facts.kind in (sqlfacts.UPDATE, sqlfacts.DELETE):
        return True
    return facts.kind == sqlfacts.INSERT and bool(_SELECT.search(facts.text))


class RunPythonWithDdl(Rule):
    """A RunPython or data-changing RunSQL runs while the migration holds a DDL lock.

    **What it flags.** An atomic migration (the default) in which a ``RunPython``
    operation, or a ``RunSQL`` that changes rows (``UPDATE``, ``DELETE``,
    ``INSERT ... SELECT``), runs after DDL that locked a table which existed
    before the change: ``ALTER TABLE``, ``CREATE INDEX``, ``DROP INDEX``,
    ``DROP TABLE``... The classic case is the field and its backfill in one
    migration::

        operations = [
            migrations.AddField("post", "comment_count", models.IntegerField(null=True)),
            migrations.RunPython(count_comments, migrations.RunPython.noop),
        ]

    DDL that runs after the data operation (including SQL Django defers to
    the end of the migration, such as foreign key constraints) is not
    flagged: its lock is taken once the data work is done. A migration with
    ``atomic = False`` is not flagged either: each operation commits on its own.

    **Lock.** Whatever the DDL took, usually ACCESS EXCLUSIVE (blocks reads and
    writes) or SHARE (``CREATE INDEX``: blocks writes). PostgreSQL releases
    table locks only when the transaction ends, and an atomic migration is a
    single transaction: the lock is held for the whole data migration, whose
    duration grows with the number of rows. A catalog-only ``ADD COLUMN`` that
    would block ``post`` for milliseconds blocks it for minutes.

    **Safe alternative.** Put the schema change and the data change in separate
    migrations, and backfill in batches outside one big transaction::

        # 0012_add_comment_count.py
        operations = [
            migrations.AddField("post", "comment_count", models.IntegerField(null=True)),
        ]

        # 0013_backfill_comment_count.py
        def backfill(apps, schema_editor):
            Post = apps.get_model("blog", "Post")
            last = 0
            while pks := list(Post.objects.filter(pk__gt=last)
                              .order_by("pk").values_list("pk", flat=True)[:1000]):
                with transaction.atomic():
                    Post.objects.filter(pk__in=pks).update(...)
                last = pks[-1]

        class Migration(migrations.Migration):
            atomic = False
            operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]

    **References.** PostgreSQL, "Explicit Locking", table-level locks are held
    until the end of the transaction:
    https://www.postgresql.org/docs/current/explicit-locking.html ; Django,
    "Non-atomic migrations":
    https://docs.djangoproject.com/en/stable/howto/writing-migrations/#non-atomic-migrations
    """

    id = "run-python-with-ddl"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    #: Confirmed when the trace sees the lock this finding names (per finding) held on its
    #: table while the operation runs; SHARE is the weakest mode it ever reports.
    predicts = Prediction(lock="ShareLock")

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if not migration.atomic:
            return
        # Locks taken so far, in execution order; deferred SQL runs after every operation.
        held: list[_locks.TableLock] = []
        for op in migration.operations:
            own = [
                lock
                for lock in _locks.blocking_locks(op, migration)
                if not lock.deferred and lock.stmt.facts.kind != sqlfacts.LOCK
            ]
            work, first_data = self._data_work(op)
            if work is not None:
                # DDL earlier in the same RunSQL is held across its UPDATE too.
                position = {id(stmt): i for i, stmt in enumerate(op.statements)}
                before = [lock for lock in own if position[id(lock.stmt)] < first_data]
                if held or before:
                    yield self._finding(op, work, held + before, ctx)
            held.extend(own)

    @staticmethod
    def _data_work(op: OperationRecord) -> tuple[str | None, int]:
        """What makes ``op`` a data migration ("RunPython", "RunSQL UPDATE"...), or None;
        and the index of its first data statement (RunSQL)."""
        from django.db.migrations.operations.special import RunPython, RunSQL

        inner = list(database_operations(op.operation))
        if any(isinstance(o, RunPython) and o.code is not RunPython.noop for o in inner):
            return "RunPython", 0
        if any(isinstance(o, RunSQL) for o in inner):
            for index, stmt in enumerate(op.statements):
                if is_bulk_data_statement(stmt.facts):
                    return f"RunSQL {stmt.facts.kind.upper()}", index
        return None, 0

    def _finding(
        self,
        op: OperationRecord,
        work: str,
        held: list[_locks.TableLock],
        ctx: RuleContext,
    ) -> Finding:
        per_table = _locks.strongest_per_table(held)
        first = next(iter(per_table.values()))
        parts = []
        for lock in per_table.values():
            # each operation that locked the table, with the statement that did
            takers = _locks.strongest_per_op(h for h in held if h.table == lock.table)
            by = ", ".join(
                f"operations[{t.op_index}] {ctx.migration.operations[t.op_index].kind} ({t.what})"
                for t in takers
            )
            parts.append(
                f"{lockmodes.sql_name(lock.mode)} on {lock.table} "
                f"(blocks {_locks.blocked_text(lock.mode)}; taken by {by})"
            )
        tables = ", ".join(per_table)
        message = (
            f"{work} (operations[{op.index}]) runs in the migration's single transaction "
            f"after DDL locked {'; '.join(parts)}. PostgreSQL holds those locks until the "
            f"transaction commits, so {tables} {'stays' if len(per_table) == 1 else 'stay'} "
            "locked for the whole data migration, "
            "which takes as long as there are rows to process: on a busy table every "
            "blocked query piles up behind it."
        )
        fix = (
            "Move the data migration into its own migration with `atomic = False` (batched "
            f"updates, one short transaction per batch) and keep the schema change of {tables} "
            "in a migration of its own that commits first."
        )
        return ctx.finding(
            self,
            op,
            message,
            fix,
            table=first.table,
            sql=list(dict.fromkeys(lock.stmt.sql for lock in per_table.values())),
            lock=first.mode,
        )
