"""DELETE of every row of an existing table in a RunSQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class DeleteWithoutWhere(Rule):
    """A DELETE without WHERE removes every row of a table in use, in one transaction.

    **What it flags.** A ``DELETE`` with no top-level ``WHERE`` clause, in a
    ``RunSQL``, on a table that existed before the change::

        migrations.RunSQL("DELETE FROM shop_cart", migrations.RunSQL.noop)

    **Lock.** ROW EXCLUSIVE on the table (readers go on), and a row lock on
    every row until the migration's transaction commits: concurrent updates
    and deletes of any row wait for the whole statement and the rest of the
    migration. The statement scans the whole table and, with foreign keys
    pointing at it, checks or cascades into the referencing tables row by
    row. The previous release, still serving during the deploy, loses its
    data, and unapplying the migration does not bring it back.

    **Safe alternative.** If only some rows must go, say which with a
    ``WHERE``. If every row must go, delete in batches from a non-atomic data
    migration, or from a management command after the deploy::

        def purge_carts(apps, schema_editor):
            Cart = apps.get_model("shop", "Cart")
            while pks := list(Cart.objects.values_list("pk", flat=True)[:5000]):
                Cart.objects.filter(pk__in=pks).delete()

        class Migration(migrations.Migration):
            atomic = False
            operations = [migrations.RunPython(purge_carts, migrations.RunPython.noop)]

    **References.** PostgreSQL, "DELETE":
    https://www.postgresql.org/docs/current/sql-delete.html
    """

    id = "delete-without-where"
    severity = Severity.ERROR
    category = Category.DATA
    only_existing_tables = True
    predicts = Prediction(scan=True)

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op):
            facts = stmt.facts
            if facts.kind != sqlfacts.DELETE or facts.has_where or not facts.table:
                continue
            if not ctx.migration.is_existing(facts.table):
                continue
            table = facts.table
            yield ctx.finding(
                self,
                op,
                f"DELETE without WHERE removes every row of {table} in one transaction: every "
                f"row stays locked until it commits (concurrent updates and deletes of "
                f"{table} wait), the whole table is scanned, and the previous release, still "
                "serving during the deploy, loses the data for good.",
                "Add the WHERE that selects the rows to remove; if every row must go, delete in "
                "batches from a RunPython in a migration with atomic = False (or a management "
                "command after the deploy).",
                table=table,
                sql=[stmt.sql],
            )
