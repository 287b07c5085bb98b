"""UNIQUE or PRIMARY KEY constraint added to an existing table, building its index under lock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, alter_actions, is_runsql

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from ..sqlfacts import AlterAction


class AddUniqueConstraint(Rule):
    """A UNIQUE or PRIMARY KEY constraint builds its index while the table is locked.

    **What it flags.** ``ALTER TABLE ... ADD CONSTRAINT ... UNIQUE (...)`` or
    ``... PRIMARY KEY (...)``, and ``ADD COLUMN ... UNIQUE``/``PRIMARY KEY``, on
    a table that existed before the change: ``AddConstraint(UniqueConstraint(fields=...))``,
    ``AlterField``/``AddField`` with ``unique=True``, ``AlterUniqueTogether``,
    and ``RunSQL``. For example::

        migrations.AddConstraint(
            "orderitem", models.UniqueConstraint(fields=["order", "product"], name="one_line")
        )

    runs ``ALTER TABLE "shop_orderitem" ADD CONSTRAINT "one_line" UNIQUE ("order_id",
    "product_id")``. Not flagged: ``ADD CONSTRAINT ... UNIQUE USING INDEX`` (the
    index already exists). A ``UniqueConstraint`` with a ``condition`` or
    expressions is emitted by Django as ``CREATE UNIQUE INDEX``; that statement
    is reported by ``add-index-non-concurrent`` (SHARE lock, concurrent build as
    the fix), not here. The ``_like`` index that ``unique=True`` adds to a
    ``CharField`` is reported by ``add-index-non-concurrent`` too.

    **Lock.** ACCESS EXCLUSIVE on the table while PostgreSQL builds the unique
    index, reading and sorting every row: reads and writes block for a time
    that grows with the table's size. In an atomic migration the lock is held
    until the migration commits.

    **Safe alternative.** Build the unique index concurrently first, in a
    migration with ``atomic = False``; then attach it as the constraint, which
    only needs a brief ACCESS EXCLUSIVE lock; keep the Django operation for the
    state::

        # 0015: atomic = False
        migrations.RunSQL(
            'CREATE UNIQUE INDEX CONCURRENTLY "one_line_idx" '
            'ON "shop_orderitem" ("order_id", "product_id")',
            reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS "one_line_idx"',
        )

        # 0016
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(
                    "orderitem",
                    models.UniqueConstraint(fields=["order", "product"], name="one_line"),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "shop_orderitem" ADD CONSTRAINT "one_line" '
                    'UNIQUE USING INDEX "one_line_idx"',
                    reverse_sql='ALTER TABLE "shop_orderitem" DROP CONSTRAINT "one_line"',
                ),
            ],
        )

    The same works for a primary key (``ADD CONSTRAINT ... PRIMARY KEY USING
    INDEX``; its columns must already be NOT NULL).

    **References.** PostgreSQL, ALTER TABLE, ``ADD table_constraint_using_index``:
    https://www.postgresql.org/docs/current/sql-altertable.html ; CREATE INDEX,
    "Building Indexes Concurrently":
    https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
    """

    id = "add-unique-constraint"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", scan=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts, action in alter_actions(op, sqlfacts.ADD_CONSTRAINT, sqlfacts.ADD_COLUMN):
            what = _what(action)
            table = facts.table
            if what is None or not table or not ctx.is_existing(table):
                continue
            name = f' "{action.constraint}"' if action.constraint else ""
            column = (
                f" ({action.column})"
                if action.column and action.kind == sqlfacts.ADD_CONSTRAINT
                else ""
            )
            message = (
                f"{what}{name}{column} on {table} builds a unique index while holding ACCESS "
                f"EXCLUSIVE on {table}: reads and writes block for the whole build, which reads "
                "and sorts every row, so the outage grows with the size of the table."
            )
            yield ctx.finding(
                self,
                op,
                message,
                _fix(op, action),
                table=table,
                sql=(stmt.sql,),
                lock="AccessExclusiveLock",
            )


def _what(action: AlterAction) -> str | None:
    """The constraint being added, for messages; None when it is not our business."""
    if action.kind == sqlfacts.ADD_CONSTRAINT:
        if action.using_index:
            return None
        if action.constraint_type == sqlfacts.UNIQUE:
            return "ADD CONSTRAINT UNIQUE"
        if action.constraint_type == sqlfacts.PRIMARY_KEY:
            return "ADD CONSTRAINT PRIMARY KEY"
        return None
    if action.inline_primary_key:
        return f"ADD COLUMN {action.column} PRIMARY KEY"
    if action.inline_unique:
        return f"ADD COLUMN {action.column} UNIQUE"
    return None


def _fix(op: OperationRecord, action: AlterAction) -> str:
    kind = "PRIMARY KEY" if action.constraint_type == sqlfacts.PRIMARY_KEY else "UNIQUE"
    steps = (
        "CREATE UNIQUE INDEX CONCURRENTLY in a RunSQL of a migration with atomic = False, then "
        f"ALTER TABLE ... ADD CONSTRAINT ... {kind} USING INDEX"
    )
    if is_runsql(op) or op.kind == "SeparateDatabaseAndState":
        return f"Replace it with {steps} (brief lock, no index build)."
    if action.kind == sqlfacts.ADD_COLUMN:
        return (
            "Add the column without unique=True first; then " + steps + ", with the AlterField "
            "setting unique=True in SeparateDatabaseAndState.state_operations."
        )
    return (
        f"Build the index first: {steps}, with the {op.kind} in "
        "SeparateDatabaseAndState.state_operations."
    )
