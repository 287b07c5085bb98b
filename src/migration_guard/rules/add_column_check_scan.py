"""ADD COLUMN with an inline CHECK on an existing table: a full scan under ACCESS EXCLUSIVE."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, alter_actions, is_runsql

if TYPE_CHECKING:
    from ..collect import OperationRecord


class AddColumnCheckScan(Rule):
    """A column added with an inline CHECK makes PostgreSQL scan the whole table under lock.

    **What it flags.** ``ALTER TABLE ... ADD COLUMN ... CHECK (...)`` on a table
    that existed before the change. Django writes the check of a field's
    ``db_check()`` inline, so the usual source is an innocent-looking
    ``AddField`` of a ``PositiveIntegerField``, ``PositiveSmallIntegerField`` or
    ``PositiveBigIntegerField`` (or a third-party field with a database check);
    ``RunSQL`` is flagged the same way::

        migrations.AddField("product", "stock", models.PositiveIntegerField(null=True))

    runs ``ALTER TABLE "shop_product" ADD COLUMN "stock" integer NULL CHECK
    ("stock" >= 0)``. Linters that read only the SQL see a nullable column and
    stay quiet.

    **Lock.** ACCESS EXCLUSIVE on the table, and PostgreSQL reads every row to
    check the new constraint, even though the new column holds NULL (or the same
    default) everywhere:
    reads and writes block for a time that grows with the size of the table
    (measured: about 0.2 s per million rows on an idle server, far more on a
    big, busy one). In an atomic migration the lock is held until the
    migration commits.

    **Safe alternative.** Add the column without the check (catalog-only, a
    brief lock), then add the check ``NOT VALID`` and validate it in a later
    migration (SHARE UPDATE EXCLUSIVE: reads and writes continue). Keep the
    field in Django's state::

        # 0020
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField("product", "stock", models.PositiveIntegerField(null=True)),
            ],
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "shop_product" ADD COLUMN "stock" integer NULL;'
                    'ALTER TABLE "shop_product" ADD CONSTRAINT "shop_product_stock_check" '
                    'CHECK ("stock" >= 0) NOT VALID',
                    reverse_sql='ALTER TABLE "shop_product" DROP COLUMN "stock"',
                ),
            ],
        )

        # 0021
        migrations.RunSQL(
            'ALTER TABLE "shop_product" VALIDATE CONSTRAINT "shop_product_stock_check"',
            reverse_sql=migrations.RunSQL.noop,
        )

    Or use an ``IntegerField`` and a ``CheckConstraint`` added with
    ``AddConstraintNotValid`` and ``ValidateConstraint``.

    **References.** PostgreSQL, ALTER TABLE (notes: adding a CHECK constraint
    requires scanning the table to verify existing rows):
    https://www.postgresql.org/docs/current/sql-altertable.html ; Django,
    ``Field.db_check()`` and ``PositiveIntegerField``:
    https://docs.djangoproject.com/en/stable/ref/models/fields/#positiveintegerfield
    """

    id = "add-column-check-scan"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", scan=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts, action in alter_actions(op, sqlfacts.ADD_COLUMN):
            if not action.inline_check:
                continue
            table = facts.table
            if not table or not ctx.is_existing(table):
                continue
            column = action.column or "?"
            field = type(op.new_field).__name__ if op.new_field is not None else ""
            origin = (
                f" (the {field}'s database check)"
                if op.kind == "AddField" and field and column == op.column
                else ""
            )
            message = (
                f"ADD COLUMN {column} on {table} carries an inline CHECK{origin}: PostgreSQL "
                f"checks it against every existing row while holding ACCESS EXCLUSIVE on "
                f"{table}, so reads and writes on {table} block for a time that grows with its "
                "size"
                + (
                    ", even though the new column is NULL everywhere."
                    if action.default is None
                    else f", although every row gets the same DEFAULT {action.default}."
                )
            )
            if is_runsql(op) or op.kind == "SeparateDatabaseAndState":
                fix = (
                    "Add the column without the CHECK, then ADD CONSTRAINT ... CHECK (...) NOT "
                    "VALID and ALTER TABLE ... VALIDATE CONSTRAINT in a later migration."
                )
            else:
                fix = (
                    f"Use SeparateDatabaseAndState: the {op.kind} in state_operations, RunSQL "
                    f'ADD COLUMN "{column}" without the CHECK plus ADD CONSTRAINT ... CHECK '
                    "(...) NOT VALID as database_operations; VALIDATE CONSTRAINT in a later "
                    "migration. Or use an IntegerField with a CheckConstraint added via "
                    "AddConstraintNotValid."
                )
            yield ctx.finding(
                self,
                op,
                message,
                fix,
                table=table,
                sql=(stmt.sql,),
                lock="AccessExclusiveLock",
            )
