"""DROP INDEX without CONCURRENTLY on an index of an existing table."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, is_runsql, statements

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, OperationRecord

#: ``index_table`` found the index belongs to no table that existed before the change.
NEW_INDEX = "\0new"


def index_table(
    op: OperationRecord, stmt: ExecutedStatement, index: str | None, mode: str, ctx: RuleContext
) -> str | None:
    """The table of ``index`` (named by a DROP INDEX or REINDEX INDEX), if it can be told.

    From the Django operation's own table; else from what the trace saw the
    statement lock (``mode`` or stronger on a table that existed before the
    change); else from a ``CREATE INDEX`` of that name earlier in the migration.
    Returns ``NEW_INDEX`` when the trace shows that neither the index nor any
    existing table was there to lock (an index of a table the change created, or
    ``IF EXISTS`` on a missing index), and None when the table is unknown.
    """
    if op.table and not is_runsql(op) and op.kind != "SeparateDatabaseAndState":
        return op.table
    obs = stmt.observation
    if obs is not None:
        locked = [rel for rel, _ in obs.locks]
        tables = [
            rel
            for rel, held in obs.locks
            if ctx.is_existing(rel) and lockmodes.strength(held) >= lockmodes.strength(mode)
        ]
        if tables:
            return tables[0]
        if index not in locked and not any(ctx.is_existing(rel) for rel in locked):
            return NEW_INDEX
    if index:
        for other in ctx.migration.operations:
            for earlier in other.statements:
                if earlier is stmt:
                    return None
                facts = earlier.facts
                if facts.kind == sqlfacts.CREATE_INDEX and facts.index == index and facts.table:
                    return facts.table
    return None


#: Operations that remove an index or constraint of a model (makemigrations writes them
#: before the model's DeleteModel: *_together on every version, Meta.indexes and
#: Meta.constraints since Django 6.0).
OPTION_REMOVALS = ("RemoveIndex", "RemoveConstraint", "AlterIndexTogether", "AlterUniqueTogether")


def _model_deleted_later(op: OperationRecord, ctx: RuleContext) -> bool:
    """``op`` removes an index of a model whose table a later DeleteModel of the same
    migration drops: the table's drop is the hazard (remove-model), not its indexes'."""
    if op.kind not in OPTION_REMOVALS:
        return False
    model = getattr(op.operation, "model_name_lower", None) or getattr(
        op.operation, "name_lower", None
    )
    return any(
        other.index > op.index
        and other.kind == "DeleteModel"
        and other.operation.name_lower == model
        for other in ctx.migration.operations
    )


class DropIndexNonConcurrent(Rule):
    """An index of an existing table is dropped without CONCURRENTLY.

    **What it flags.** ``DROP INDEX`` without ``CONCURRENTLY`` on an index of a
    table that existed before the change, one finding per statement:
    ``RemoveIndex``, ``AlterIndexTogether`` removing an ``index_together``,
    ``AlterField`` removing ``db_index=True`` (which drops the ``_like`` index
    too), ``RemoveConstraint`` of a ``UniqueConstraint`` Django built as an
    index, and ``RunSQL("DROP INDEX ...")``. For example::

        migrations.RemoveIndex("order", name="order_created_idx")

    runs ``DROP INDEX IF EXISTS "order_created_idx"``. ``DROP INDEX`` names only
    the index: the table comes from the Django operation or, for ``RunSQL``,
    from the locks the trace saw; when it cannot be told, the finding names the
    index alone. An index removed right before its model's ``DeleteModel`` (what
    ``makemigrations`` writes on Django 6.0+) goes with the table: that drop is
    ``remove-model``'s finding.

    **Lock.** ACCESS EXCLUSIVE on the index's table: reads and writes block.
    Dropping is quick, but the lock request first waits for every query already
    running on the table, and every new query queues behind the waiting
    request; a long report query turns the drop into an outage. In an atomic
    migration the lock is held until the migration commits.

    **Safe alternative.** ``DROP INDEX CONCURRENTLY`` waits for running queries
    without blocking new ones (SHARE UPDATE EXCLUSIVE). It refuses to run in a
    transaction, so give it a migration with ``atomic = False``::

        from django.contrib.postgres.operations import RemoveIndexConcurrently

        class Migration(migrations.Migration):
            atomic = False

            operations = [
                RemoveIndexConcurrently("order", "order_created_idx"),
            ]

    For an index that is not a ``Meta.indexes`` entry, keep the Django
    operation for the state and drop the index yourself::

        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AlterIndexTogether("comment", set())],
            database_operations=[
                migrations.RunSQL('DROP INDEX CONCURRENTLY IF EXISTS "blog_comment_post_id_idx"'),
            ],
        )

    **References.** PostgreSQL, DROP INDEX (``CONCURRENTLY``):
    https://www.postgresql.org/docs/current/sql-dropindex.html ; "Explicit
    Locking": https://www.postgresql.org/docs/current/explicit-locking.html ;
    Django, ``RemoveIndexConcurrently``:
    https://docs.djangoproject.com/en/stable/ref/contrib/postgres/operations/#concurrent-index-operations
    """

    id = "drop-index-non-concurrent"
    severity = Severity.WARNING
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock")
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if _model_deleted_later(op, ctx):
            return
        for stmt, facts in statements(op):
            if facts.kind != sqlfacts.DROP_INDEX or facts.concurrently:
                continue
            table = index_table(op, stmt, facts.index, "AccessExclusiveLock", ctx)
            if table == NEW_INDEX or (table is not None and not ctx.is_existing(table)):
                continue
            yield self._finding(op, stmt, facts.index, table, ctx)

    def _finding(
        self,
        op: OperationRecord,
        stmt: ExecutedStatement,
        index: str | None,
        table: str | None,
        ctx: RuleContext,
    ) -> Finding:
        name = f'"{index}"' if index else "an index"
        where = table or "its table"
        on = f" on {table}" if table else ""
        message = (
            f"DROP INDEX {name}{on} runs without CONCURRENTLY: it takes ACCESS EXCLUSIVE on "
            f"{where}, which blocks reads and writes. The drop itself is quick, but the lock "
            f"request first waits for every query already running on {where}, and all new "
            "queries queue behind it: one slow query turns the drop into an outage."
        )
        return ctx.finding(
            self,
            op,
            message,
            _fix(op, index),
            table=table,
            sql=(stmt.sql,),
            lock="AccessExclusiveLock",
        )


def _fix(op: OperationRecord, index: str | None) -> str:
    if op.kind == "RemoveIndex":
        return (
            "Use RemoveIndexConcurrently (django.contrib.postgres.operations) in a migration of "
            "its own with atomic = False."
        )
    drop = f'DROP INDEX CONCURRENTLY IF EXISTS "{index}"' if index else "DROP INDEX CONCURRENTLY"
    if is_runsql(op) or op.kind == "SeparateDatabaseAndState":
        return f"Write {drop} and move the RunSQL to a migration of its own with atomic = False."
    return (
        f"Keep the {op.kind} in SeparateDatabaseAndState.state_operations and run "
        f"RunSQL('{drop}') as its database operation, in a migration with atomic = False."
    )
