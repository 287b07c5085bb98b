"""VACUUM FULL in a migration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class VacuumFull(Rule):
    """VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock.

    **What it flags.** ``VACUUM FULL`` (or ``VACUUM (FULL)``) in a ``RunSQL``,
    or run by ``RunPython`` code, on a table that existed before the change,
    or on the whole database when it names no table::

        migrations.RunSQL("VACUUM FULL shop_order", migrations.RunSQL.noop)

    Plain ``VACUUM`` (SHARE UPDATE EXCLUSIVE, reads and writes go on) is not
    flagged.

    **Lock.** ACCESS EXCLUSIVE on each table: reads and writes wait while
    PostgreSQL copies the whole table into a new file and rebuilds every index,
    a time proportional to the table's size; it also needs disk space for a
    second copy. ``VACUUM`` cannot run inside a transaction block, so in an
    atomic migration (the default) it fails outright.

    **Safe alternative.** Leave space reclamation to autovacuum, or compact the
    table online outside the deploy with a tool that rebuilds it without the
    long lock (``pg_repack``, ``pg_squeeze``). When only statistics or dead
    rows matter, plain ``VACUUM`` / ``ANALYZE`` in a non-atomic migration is
    enough::

        class Migration(migrations.Migration):
            atomic = False
            operations = [migrations.RunSQL("VACUUM (ANALYZE) shop_order", migrations.RunSQL.noop)]

    **References.** PostgreSQL, "VACUUM":
    https://www.postgresql.org/docs/current/sql-vacuum.html ; "Routine
    Vacuuming": https://www.postgresql.org/docs/current/routine-vacuuming.html
    """

    id = "vacuum-full"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    #: Observed from a second connection (VACUUM runs outside a transaction),
    #: which sees the lock but not the rewrite.
    predicts = Prediction(lock="AccessExclusiveLock", rewrite=True)

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op, orm=True):
            facts = stmt.facts
            if facts.kind != sqlfacts.VACUUM or not facts.full:
                continue
            fails = (
                " In this atomic migration it fails: VACUUM cannot run inside a transaction block."
                if ctx.migration.atomic
                else ""
            )
            fix = (
                "Drop VACUUM FULL from the migration: let autovacuum reclaim space, or rebuild "
                "the table online outside the deploy (pg_repack); plain VACUUM in a migration "
                "with atomic = False does not block traffic."
            )
            if not facts.tables:
                yield ctx.finding(
                    self,
                    op,
                    "VACUUM FULL without a table rewrites every table of the database, each "
                    "under ACCESS EXCLUSIVE (blocks reads and writes) for as long as copying "
                    f"it and rebuilding its indexes takes.{fails}",
                    fix,
                    sql=[stmt.sql],
                )
                continue
            for table in _locks.existing_tables(facts, ctx.migration):
                yield ctx.finding(
                    self,
                    op,
                    f"VACUUM FULL rewrites {table} under ACCESS EXCLUSIVE: reads and writes of "
                    f"{table} wait while PostgreSQL copies the whole table and rebuilds its "
                    f"indexes, a time proportional to its size.{fails}",
                    fix,
                    table=table,
                    sql=[stmt.sql],
                    lock="AccessExclusiveLock",
                )
