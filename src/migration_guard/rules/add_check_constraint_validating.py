"""CHECK constraint added to an existing table without NOT VALID: every row checked under lock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, alter_actions, is_runsql

if TYPE_CHECKING:
    from ..collect import OperationRecord


class AddCheckConstraintValidating(Rule):
    """A CHECK constraint is added to an existing table and validated at once, under lock.

    **What it flags.** ``ALTER TABLE ... ADD CONSTRAINT ... CHECK (...)`` without
    ``NOT VALID`` on a table that existed before the change:
    ``AddConstraint(CheckConstraint(...))``, ``AlterField`` to a field with a
    database check (``IntegerField`` → ``PositiveIntegerField``), and
    ``RunSQL``. For example::

        migrations.AddConstraint(
            "orderitem",
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="quantity_positive"),
        )

    runs ``ALTER TABLE "shop_orderitem" ADD CONSTRAINT "quantity_positive" CHECK
    ("quantity" >= 1)``. A CHECK written inline in ``ADD COLUMN`` is
    ``add-column-check-scan``'s business; ``NOT VALID`` constraints and
    ``VALIDATE CONSTRAINT`` are not flagged.

    **Lock.** ACCESS EXCLUSIVE on the table while PostgreSQL reads every row to
    check the condition: reads and writes block for a time that grows with the
    size of the table. In an atomic migration the lock is held until the
    migration commits.

    **Safe alternative.** Add the constraint ``NOT VALID`` (brief lock, no scan:
    only new and updated rows are checked), then validate it in a later
    migration: ``VALIDATE CONSTRAINT`` takes SHARE UPDATE EXCLUSIVE, which blocks
    neither reads nor writes. ``django.contrib.postgres`` has both operations::

        from django.contrib.postgres.operations import AddConstraintNotValid, ValidateConstraint

        # 0011
        operations = [
            AddConstraintNotValid(
                "orderitem",
                models.CheckConstraint(
                    condition=models.Q(quantity__gte=1), name="quantity_positive"
                ),
            ),
        ]

        # 0012
        operations = [ValidateConstraint("orderitem", name="quantity_positive")]

    ``SeparateDatabaseAndState`` with ``RunSQL("ALTER TABLE ... ADD CONSTRAINT ...
    CHECK (...) NOT VALID")`` and the ``AddConstraint`` in ``state_operations``
    works as well.

    **References.** PostgreSQL, ALTER TABLE, ``ADD table_constraint [ NOT VALID ]``
    and ``VALIDATE CONSTRAINT``: https://www.postgresql.org/docs/current/sql-altertable.html ;
    Django, ``AddConstraintNotValid``/``ValidateConstraint``:
    https://docs.djangoproject.com/en/stable/ref/contrib/postgres/operations/#adding-constraints-without-enforcing-validation
    """

    id = "add-check-constraint-validating"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", scan=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts, action in alter_actions(op, sqlfacts.ADD_CONSTRAINT):
            if action.constraint_type != sqlfacts.CHECK or action.not_valid:
                continue
            table = facts.table
            if not table or not ctx.is_existing(table):
                continue
            name = f' "{action.constraint}"' if action.constraint else ""
            message = (
                f"ADD CONSTRAINT{name} CHECK on {table} checks every existing row at once, "
                f"without NOT VALID: it holds ACCESS EXCLUSIVE on {table} during the scan, so "
                f"reads and writes on {table} block for a time that grows with its size."
            )
            if is_runsql(op) or op.kind == "SeparateDatabaseAndState":
                fix = (
                    "Append NOT VALID to the constraint, then ALTER TABLE ... VALIDATE "
                    "CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE: reads and writes "
                    "continue)."
                )
            elif op.kind == "AddConstraint":
                fix = (
                    "Use AddConstraintNotValid (django.contrib.postgres.operations) here and "
                    "ValidateConstraint in a later migration (SHARE UPDATE EXCLUSIVE: reads and "
                    "writes continue)."
                )
            else:
                fix = (
                    f"Use SeparateDatabaseAndState: the {op.kind} in state_operations, RunSQL "
                    "the same ALTER TABLE with ADD CONSTRAINT ... CHECK (...) NOT VALID as "
                    "database_operations; then VALIDATE CONSTRAINT in a later migration."
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
