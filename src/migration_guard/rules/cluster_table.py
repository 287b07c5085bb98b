"""CLUSTER in a migration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class ClusterTable(Rule):
    """CLUSTER rewrites the table in index order under an ACCESS EXCLUSIVE lock.

    **What it flags.** ``CLUSTER`` in a ``RunSQL``, or run by ``RunPython``
    code, on a table that existed before the change (or on every previously
    clustered table, when it names none)::

        migrations.RunSQL("CLUSTER shop_order USING shop_order_created_idx")

    **Lock.** ACCESS EXCLUSIVE on the table: reads and writes wait while
    PostgreSQL sorts the whole table into a new file and rebuilds every index,
    a time proportional to the table's size (plus disk space for a second
    copy). The order it produces is not maintained afterwards.

    **Safe alternative.** Do not reorder a live table in a deploy. Serve the
    access pattern with an index built concurrently (a covering index with
    ``INCLUDE`` often gives what clustering was meant to), or reorganise the
    table online outside the deploy with ``pg_repack --order-by``::

        class Migration(migrations.Migration):
            atomic = False
            operations = [
                AddIndexConcurrently(
                    "order", models.Index(fields=["created"], name="order_created_idx")
                ),
            ]

    **References.** PostgreSQL, "CLUSTER":
    https://www.postgresql.org/docs/current/sql-cluster.html
    """

    id = "cluster-table"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", rewrite=True)

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op, orm=True):
            facts = stmt.facts
            if facts.kind != sqlfacts.CLUSTER:
                continue
            fix = (
                "Remove CLUSTER from the migration: add the index the queries need with "
                "AddIndexConcurrently (atomic = False), or reorder the table online outside "
                "the deploy (pg_repack --order-by)."
            )
            if not facts.table:
                yield ctx.finding(
                    self,
                    op,
                    "CLUSTER without a table rewrites every table that was clustered before, "
                    "each under ACCESS EXCLUSIVE (blocks reads and writes) for as long as "
                    "sorting it and rebuilding its indexes takes.",
                    fix,
                    sql=[stmt.sql],
                )
                continue
            for table in _locks.existing_tables(facts, ctx.migration):
                using = f" in the order of {facts.index}" if facts.index else ""
                yield ctx.finding(
                    self,
                    op,
                    f"CLUSTER rewrites {table}{using} under ACCESS EXCLUSIVE: reads and writes "
                    f"of {table} wait while PostgreSQL sorts the whole table into a new file and "
                    "rebuilds its indexes, a time proportional to its size.",
                    fix,
                    table=table,
                    sql=[stmt.sql],
                    lock="AccessExclusiveLock",
                )
