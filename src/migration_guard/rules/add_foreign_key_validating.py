"""FOREIGN KEY added to an existing table without NOT VALID: every row is checked under lock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, alter_actions, is_runsql

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from ..sqlfacts import AlterAction


class AddForeignKeyValidating(Rule):
    """A FOREIGN KEY is added to an existing table and validated at once, under lock.

    **What it flags.** A foreign key constraint added without ``NOT VALID`` to a
    table that existed before the change:

    - ``ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... REFERENCES ...``, which
      Django emits for ``AlterField`` turning a column into a ``ForeignKey`` (or
      changing its target or type), and which ``RunSQL`` may contain;
    - ``ADD COLUMN ... DEFAULT ... REFERENCES ...``: ``AddField`` of a
      ``ForeignKey`` with a default (a NOT NULL foreign key needs one), or
      ``RunSQL``.

    For example, letting the database enforce a relation that was declared
    with ``db_constraint=False``::

        migrations.AlterField(
            "order", "customer", models.ForeignKey("customer", on_delete=models.PROTECT)
        )

    ends with ``ALTER TABLE "shop_order" ADD CONSTRAINT "..._fk_shop_customer_id"
    FOREIGN KEY ("customer_id") REFERENCES "shop_customer" ("id") DEFERRABLE
    INITIALLY DEFERRED``.

    Not flagged: ``ADD COLUMN ... REFERENCES`` *without* a default, which is what
    ``AddField`` of a nullable ``ForeignKey`` emits. Every value of the new
    column is NULL, so PostgreSQL marks the constraint valid without reading the
    table (checked on PostgreSQL 15: constant time on a million rows). The
    brief SHARE ROW EXCLUSIVE it takes on the referenced table is still held
    until the migration commits; the index Django builds for the column is
    reported by ``add-index-non-concurrent``. ``NOT VALID`` constraints and
    ``VALIDATE CONSTRAINT`` are not flagged either.

    **Lock.** SHARE ROW EXCLUSIVE on both the table and the referenced table
    while PostgreSQL checks every existing row: writes to both tables block
    (reads continue) for a time that grows with the size of the table. With
    ``ADD COLUMN`` the table is even held in ACCESS EXCLUSIVE, so its reads block
    too. In an atomic migration the locks are held until the migration commits.

    **Safe alternative.** Add the constraint ``NOT VALID`` (brief lock, no
    scan: only new rows are checked), then validate it in a later migration:
    ``VALIDATE CONSTRAINT`` takes SHARE UPDATE EXCLUSIVE, which blocks neither
    reads nor writes. Keep the Django operation for the state::

        # 0007
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    "order", "customer",
                    models.ForeignKey("customer", null=True, on_delete=models.PROTECT),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'ALTER TABLE "shop_order" ADD COLUMN "customer_id" bigint NULL;'
                    'ALTER TABLE "shop_order" ADD CONSTRAINT "shop_order_customer_fk" '
                    'FOREIGN KEY ("customer_id") REFERENCES "shop_customer" ("id") '
                    "DEFERRABLE INITIALLY DEFERRED NOT VALID",
                    reverse_sql='ALTER TABLE "shop_order" DROP COLUMN "customer_id"',
                ),
            ],
        )

        # 0008 (atomic = False): CREATE INDEX CONCURRENTLY on the column
        # 0009
        migrations.RunSQL(
            'ALTER TABLE "shop_order" VALIDATE CONSTRAINT "shop_order_customer_fk"',
            reverse_sql=migrations.RunSQL.noop,
        )

    **References.** PostgreSQL, ALTER TABLE, ``ADD table_constraint`` and
    ``VALIDATE CONSTRAINT`` (notes on NOT VALID):
    https://www.postgresql.org/docs/current/sql-altertable.html ; "Explicit
    Locking": https://www.postgresql.org/docs/current/explicit-locking.html
    """

    id = "add-foreign-key-validating"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="ShareRowExclusiveLock", scan=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts, action in alter_actions(op, sqlfacts.ADD_CONSTRAINT, sqlfacts.ADD_COLUMN):
            referenced = _validated_reference(action)
            table = facts.table
            if referenced is None or not table or not ctx.is_existing(table):
                continue
            yield ctx.finding(
                self,
                op,
                _message(action, table, referenced),
                _fix(op, action),
                table=table,
                sql=(stmt.sql,),
                lock="ShareRowExclusiveLock",
                also=[(referenced, "ShareRowExclusiveLock")] if referenced != "?" else [],
            )


def _validated_reference(action: AlterAction) -> str | None:
    """The referenced table of a foreign key this action validates at once, else None."""
    if action.kind == sqlfacts.ADD_CONSTRAINT:
        if action.constraint_type == sqlfacts.FOREIGN_KEY and not action.not_valid:
            return action.references or "?"
        return None
    # ADD COLUMN ... REFERENCES: PostgreSQL skips the check when the column has no
    # default (every value is NULL); any DEFAULT, even DEFAULT NULL, makes it scan.
    if action.inline_references and action.default is not None:
        return action.inline_references
    return None


def _message(action: AlterAction, table: str, referenced: str) -> str:
    name = f' "{action.constraint}"' if action.constraint else ""
    column = f" ({action.column})" if action.column else ""
    both = (
        f"{table} (it references itself)"
        if referenced == table
        else f"both {table} and {referenced}"
    )
    if action.kind == sqlfacts.ADD_COLUMN:
        what = f"ADD COLUMN {action.column} with a DEFAULT and a FOREIGN KEY{name}"
        extra = (
            f" The ADD COLUMN also holds ACCESS EXCLUSIVE on {table}, so its reads block as well."
        )
    else:
        what = f"ADD CONSTRAINT FOREIGN KEY{name}{column}"
        extra = ""
    return (
        f"{what} on {table} referencing {referenced} checks every existing row of {table} "
        f"at once, without NOT VALID: it holds SHARE ROW EXCLUSIVE on {both} during the "
        f"scan, so writes to {'it' if referenced == table else 'both tables'} block (reads "
        f"continue) for a time that grows with the size of {table}.{extra}"
    )


def _fix(op: OperationRecord, action: AlterAction) -> str:
    validate = (
        "then ALTER TABLE ... VALIDATE CONSTRAINT in a later migration (SHARE UPDATE EXCLUSIVE: "
        "reads and writes continue)"
    )
    if is_runsql(op) or op.kind == "SeparateDatabaseAndState":
        if action.kind == sqlfacts.ADD_COLUMN:
            return (
                "Add the column without DEFAULT/REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY "
                f"... NOT VALID, {validate}."
            )
        return f"Append NOT VALID to the constraint, {validate}."
    return (
        f"Use SeparateDatabaseAndState: keep the {op.kind} in state_operations and, as "
        "database_operations, RunSQL the column change and ADD CONSTRAINT ... FOREIGN KEY ... "
        f"NOT VALID; {validate}."
    )
