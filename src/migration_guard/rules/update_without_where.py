"""UPDATE of every row of an existing table in a RunSQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class UpdateWithoutWhere(Rule):
    """An UPDATE without WHERE rewrites every row of a busy table in one transaction.

    **What it flags.** An ``UPDATE`` with no top-level ``WHERE`` clause, in a
    ``RunSQL``, on a table that existed before the change (``UPDATE ... FROM``
    and ``WITH ... UPDATE`` included)::

        migrations.RunSQL("UPDATE blog_post SET view_count = 0", migrations.RunSQL.noop)

    **Lock.** ROW EXCLUSIVE on the table (it blocks no reader), but a row lock
    on every row, held until the migration's transaction commits: any
    concurrent ``UPDATE``, ``DELETE`` or ``SELECT ... FOR UPDATE`` of any row
    waits for the whole statement and the rest of the migration. The statement
    scans the whole table and writes a new version of every row: time, WAL,
    table and index bloat proportional to the table's size.

    **Safe alternative.** Update in batches by primary key, one short
    transaction per batch, in a migration with ``atomic = False`` (or a
    management command run after the deploy)::

        def reset_view_counts(apps, schema_editor):
            with schema_editor.connection.cursor() as cursor:
                last = 0
                while True:
                    with transaction.atomic():
                        cursor.execute(
                            "UPDATE blog_post SET view_count = 0 WHERE id IN ("
                            " SELECT id FROM blog_post WHERE id > %s ORDER BY id LIMIT 1000)"
                            " RETURNING id", [last])
                        ids = [row[0] for row in cursor.fetchall()]
                    if not ids:
                        return
                    last = max(ids)

        class Migration(migrations.Migration):
            atomic = False
            operations = [migrations.RunPython(reset_view_counts, migrations.RunPython.noop)]

    **References.** PostgreSQL, "UPDATE":
    https://www.postgresql.org/docs/current/sql-update.html ; "Explicit
    Locking", row-level locks:
    https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-ROWS
    """

    id = "update-without-where"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(scan=True)

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op):
            facts = stmt.facts
            if facts.kind != sqlfacts.UPDATE or facts.has_where or not facts.table:
                continue
            if not ctx.migration.is_existing(facts.table):
                continue
            table = facts.table
            until = (
                "until the migration commits"
                if ctx.migration.atomic
                else "until the statement ends"
            )
            yield ctx.finding(
                self,
                op,
                f"UPDATE without WHERE rewrites every row of {table} in one statement: every "
                f"row stays locked {until}, so concurrent updates and deletes of any row of "
                f"{table} wait for all of it, and each row gets a new version (a full scan, WAL, "
                "table and index bloat proportional to the table's size).",
                "Update in batches by primary key, one short transaction per batch, from a "
                "RunPython in a migration with atomic = False (or a management command after "
                "the deploy).",
                table=table,
                sql=[stmt.sql],
            )
