"""REINDEX without CONCURRENTLY on an existing table or index."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, statements
from .drop_index_non_concurrent import NEW_INDEX, index_table

if TYPE_CHECKING:
    from ..collect import OperationRecord


class ReindexNonConcurrent(Rule):
    """REINDEX rebuilds indexes of an existing table without CONCURRENTLY.

    **What it flags.** ``REINDEX INDEX``, ``REINDEX TABLE``, ``REINDEX SCHEMA``
    and ``REINDEX DATABASE``/``SYSTEM`` without ``CONCURRENTLY`` (in ``RunSQL``,
    or emitted by any operation), on a table that existed before the change or
    one of its indexes. For example::

        migrations.RunSQL('REINDEX INDEX "shop_order_created_idx"')

    ``REINDEX INDEX`` names only the index: its table comes from what the trace
    saw the statement lock, or from a ``CREATE INDEX`` earlier in the migration.

    **Lock.** SHARE on the table for the whole rebuild, which blocks ``INSERT``,
    ``UPDATE`` and ``DELETE``, and ACCESS EXCLUSIVE on each index being rebuilt,
    which blocks every query that opens that index. The planner opens all
    indexes of a table to plan any query on it, so in practice reads of the
    table wait as well (checked on PostgreSQL 15: even ``SELECT count(*)``
    waits). The rebuild reads the whole table, so the outage grows with its
    size; in an atomic migration the locks are held until the migration commits.

    **Safe alternative.** On PostgreSQL 12 and later, ``REINDEX ... CONCURRENTLY``
    rebuilds the index beside the old one and swaps them (SHARE UPDATE
    EXCLUSIVE: reads and writes continue). It refuses to run in a transaction,
    so give it a migration with ``atomic = False``::

        class Migration(migrations.Migration):
            atomic = False

            operations = [
                migrations.RunSQL(
                    'REINDEX INDEX CONCURRENTLY "shop_order_created_idx"',
                    reverse_sql=migrations.RunSQL.noop,
                ),
            ]

    Before PostgreSQL 12: ``CREATE INDEX CONCURRENTLY`` a new copy, ``DROP
    INDEX CONCURRENTLY`` the old one, then rename the new one
    (``ALTER INDEX ... RENAME TO``). Often the better fix is to leave reindexing
    out of migrations and run it as maintenance.

    **References.** PostgreSQL, REINDEX ("Rebuilding Indexes Concurrently"):
    https://www.postgresql.org/docs/current/sql-reindex.html ; "Explicit
    Locking": https://www.postgresql.org/docs/current/explicit-locking.html
    """

    id = "reindex-non-concurrent"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="ShareLock")
    plannable = False

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts in statements(op):
            if facts.kind != sqlfacts.REINDEX or facts.concurrently:
                continue
            target = facts.target
            if target == "TABLE":
                table = facts.table
                if not table or not ctx.is_existing(table):
                    continue
                what = f"REINDEX TABLE {table} rebuilds every index of {table}"
                index_lock = "each of its indexes"
            elif target == "INDEX":
                table = index_table(op, stmt, facts.index, "ShareLock", ctx)
                if table == NEW_INDEX or (table is not None and not ctx.is_existing(table)):
                    continue
                on = f" on {table}" if table else ""
                what = f'REINDEX INDEX "{facts.index}"{on} rebuilds the index'
                index_lock = "the index"
            elif target in ("SCHEMA", "DATABASE", "SYSTEM"):
                table = None
                what = (
                    f"REINDEX {target} rebuilds the indexes of every table in the {target.lower()}"
                )
                index_lock = "each index"
            else:
                continue
            where = table or ("its table" if target == "INDEX" else "each table")
            message = (
                f"{what} without CONCURRENTLY: SHARE on {where} blocks INSERT, UPDATE and "
                f"DELETE for the whole rebuild, and ACCESS EXCLUSIVE on {index_lock} blocks "
                "every query that opens it; since the planner opens all indexes of a table, "
                "reads wait too in practice. The rebuild reads the whole table, so the outage "
                "grows with its size."
            )
            if target == "SYSTEM":
                fix = (
                    "REINDEX SYSTEM has no concurrent form: run it as maintenance, outside "
                    "migrations."
                )
            elif ctx.pg.has_reindex_concurrently:
                fix = (
                    f"Use REINDEX {target} CONCURRENTLY in a RunSQL of a migration of its own "
                    "with atomic = False (reads and writes continue), or run it as maintenance "
                    "outside migrations."
                )
            else:
                fix = (
                    "This PostgreSQL has no REINDEX CONCURRENTLY (12+): build a copy with "
                    "CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY the old one and rename "
                    "the copy, each in a migration with atomic = False."
                )
            yield ctx.finding(
                self,
                op,
                message,
                fix,
                table=table,
                sql=(stmt.sql,),
                lock="ShareLock",
            )
