"""CREATE INDEX without CONCURRENTLY on an existing table."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Prediction, Rule, RuleContext, is_runsql, statements

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, OperationRecord

_CREATE_INDEX = re.compile(r"^(\s*CREATE\s+(?:UNIQUE\s+)?INDEX)\s+", re.IGNORECASE)


def concurrent_sql(text: str) -> str | None:
    """``text`` (Django's CREATE INDEX) with CONCURRENTLY added, or None if it is not one."""
    if not _CREATE_INDEX.match(text):
        return None
    return _CREATE_INDEX.sub(r"\1 CONCURRENTLY ", text, count=1).strip()


class AddIndexNonConcurrent(Rule):
    """An index is built without CONCURRENTLY on a table that already exists.

    **What it flags.** Every ``CREATE [UNIQUE] INDEX`` without ``CONCURRENTLY``
    on a table that existed before the change, one finding per statement,
    whatever produced it:

    - ``AddIndex(...)``;
    - ``db_index=True`` added by ``AddField`` or ``AlterField``;
    - the extra ``varchar_pattern_ops``/``text_pattern_ops`` index (``..._like``)
      Django adds for a ``CharField``/``TextField`` with ``db_index=True`` or
      ``unique=True``;
    - the index Django creates for a new ``ForeignKey`` column;
    - ``AlterIndexTogether``;
    - ``AddConstraint(UniqueConstraint(..., condition=...))`` and other unique
      constraints Django can only express as an index (expressions,
      ``include``, ``opclasses``): Django emits ``CREATE UNIQUE INDEX``. They
      are reported here, not by ``add-unique-constraint``, because the lock is
      an index build's SHARE lock and the fix is the concurrent build;
    - ``RunSQL("CREATE INDEX ...")``.

    For example::

        migrations.AddIndex("order", models.Index(fields=["created"], name="order_created_idx"))

    runs ``CREATE INDEX "order_created_idx" ON "shop_order" ("created")``.

    **Lock.** SHARE on the table for the whole index build: every ``INSERT``,
    ``UPDATE`` and ``DELETE`` waits until the index is built (reads go on). The
    build reads the whole table and sorts it, so the wait grows with the size
    of the table: seconds to many minutes. In an atomic migration the lock is
    held until the migration commits.

    **Safe alternative.** Build the index with ``CONCURRENTLY`` (SHARE UPDATE
    EXCLUSIVE: reads and writes continue) in a migration of its own with
    ``atomic = False``, since PostgreSQL refuses it inside a transaction::

        from django.contrib.postgres.operations import AddIndexConcurrently

        class Migration(migrations.Migration):
            atomic = False

            operations = [
                AddIndexConcurrently(
                    "order", models.Index(fields=["created"], name="order_created_idx")
                ),
            ]

    For an index that comes with a field (``db_index``, ``ForeignKey``, the
    ``_like`` index), keep the field change for Django's state and build the
    index yourself::

        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.AlterField("order", "updated_at", field)],
            database_operations=[
                migrations.RunSQL(
                    'CREATE INDEX CONCURRENTLY "shop_order_updated_at_idx" '
                    'ON "shop_order" ("updated_at")',
                    reverse_sql='DROP INDEX CONCURRENTLY "shop_order_updated_at_idx"',
                ),
            ],
        )

    A concurrent build that fails leaves an INVALID index behind: drop it and
    retry.

    **References.** PostgreSQL, CREATE INDEX, "Building Indexes Concurrently":
    https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY ;
    "Explicit Locking": https://www.postgresql.org/docs/current/explicit-locking.html ;
    Django, ``AddIndexConcurrently``:
    https://docs.djangoproject.com/en/stable/ref/contrib/postgres/operations/#concurrent-index-operations
    """

    id = "add-index-non-concurrent"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="ShareLock", scan=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt, facts in statements(op):
            if facts.kind != sqlfacts.CREATE_INDEX or facts.concurrently:
                continue
            table = facts.table
            if not table or not ctx.is_existing(table):
                continue
            yield self._finding(op, stmt, facts, table, ctx)

    def _finding(
        self,
        op: OperationRecord,
        stmt: ExecutedStatement,
        facts: sqlfacts.SqlStatement,
        table: str,
        ctx: RuleContext,
    ) -> Finding:
        what = "CREATE UNIQUE INDEX" if facts.unique else "CREATE INDEX"
        index = f'"{facts.index}"' if facts.index else "(unnamed)"
        source = _source(op, facts)
        message = (
            f"{what} {index} on {table}{source} runs without CONCURRENTLY: it holds a SHARE "
            f"lock on {table} for the whole index build, so every INSERT, UPDATE and DELETE on "
            f"{table} waits (reads continue). The build reads and sorts the whole table: on a "
            "big, busy table that is minutes of queued or failed writes."
        )
        referenced = _fk_references_held(op, stmt, ctx)
        if referenced:
            message += (
                f" The same transaction already holds SHARE ROW EXCLUSIVE on {referenced} "
                f"(the foreign key), so writes to {referenced} wait for the build too."
            )
        return ctx.finding(
            self,
            op,
            message,
            _fix(op, stmt, facts),
            table=table,
            sql=(stmt.sql,),
            lock="ShareLock",
        )


def _source(op: OperationRecord, facts: sqlfacts.SqlStatement) -> str:
    """Where the index comes from, as a parenthesised phrase ('' when obvious)."""
    kind = op.kind
    if "_pattern_ops" in facts.text.lower():
        return (
            " (the extra varchar_pattern_ops/text_pattern_ops index Django adds for LIKE "
            "queries on a CharField/TextField with db_index=True or unique=True)"
        )
    field = op.new_field
    column = op.column
    if kind in ("AddField", "AlterField") and field is not None:
        if getattr(field, "many_to_one", False) or getattr(field, "one_to_one", False):
            return f" (the index Django creates for the ForeignKey column {column})"
        if getattr(field, "db_index", False):
            return f" (db_index=True on {column})"
    if kind == "AlterIndexTogether":
        return " (index_together)"
    if kind == "AddConstraint" and facts.unique:
        return (
            " (a UniqueConstraint with a condition or expressions, which Django emits as an index)"
        )
    return ""


def _fk_references_held(op: OperationRecord, stmt: ExecutedStatement, ctx: RuleContext) -> str:
    """The referenced table of a foreign key the same operation added before ``stmt``."""
    if not ctx.migration.atomic:
        return ""
    for earlier in op.statements:
        if earlier is stmt:
            break
        facts = earlier.facts
        if facts.kind != sqlfacts.ALTER_TABLE:
            continue
        for action in facts.actions:
            referenced = action.inline_references or (
                action.references if action.constraint_type == sqlfacts.FOREIGN_KEY else None
            )
            if referenced and referenced != facts.table and ctx.is_existing(referenced):
                return referenced
    return ""


def _fix(op: OperationRecord, stmt: ExecutedStatement, facts: sqlfacts.SqlStatement) -> str:
    if op.kind == "AddIndex":
        return (
            "Use AddIndexConcurrently (django.contrib.postgres.operations) in a migration of its "
            "own with atomic = False."
        )
    if is_runsql(op):
        return (
            "Write CREATE INDEX CONCURRENTLY and move the RunSQL to a migration of its own with "
            "atomic = False (reverse_sql: DROP INDEX CONCURRENTLY)."
        )
    concurrent = concurrent_sql(stmt.sql)
    build = f"RunSQL('{concurrent}')" if concurrent else "RunSQL CREATE INDEX CONCURRENTLY"
    if op.kind == "AlterIndexTogether":
        return (
            "Declare the index in Meta.indexes and add it with AddIndexConcurrently in an "
            f"atomic = False migration, or keep AlterIndexTogether as a state_operation of "
            f"SeparateDatabaseAndState with {build} as its database operation."
        )
    if op.kind == "AddField":
        return (
            "Add the field with db_index=False (a ForeignKey too) here; then, in a migration with "
            "atomic = False, use SeparateDatabaseAndState with the AlterField that sets "
            f"db_index=True as state_operations and {build} as database_operations."
        )
    return (
        f"Keep the {op.kind} in SeparateDatabaseAndState.state_operations and build the index "
        f"with {build} (reverse_sql DROP INDEX CONCURRENTLY) in a migration with atomic = False."
    )
