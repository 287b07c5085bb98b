"""Dropping a table the previous release still uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import database_kinds, made_earlier, parsed, state_knows
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class RemoveModel(Rule):
    """Dropping a model's table breaks the previous release, which still queries it.

    **What it flags.** ``DeleteModel`` that drops its table (``DROP TABLE``,
    with the automatic many-to-many tables of the model), and ``DROP TABLE``
    in ``RunSQL`` of a table that existed before the change::

        migrations.DeleteModel("PageView")
        # DROP TABLE "blog_pageview" CASCADE

    During a rolling deploy the previous release keeps running for a while,
    and every query of its code on the model fails with "relation does not
    exist" until the last old server is gone. Not flagged: a deletion in
    Django's state only (``SeparateDatabaseAndState`` with no database
    operation, or an unmanaged model), and ``RunSQL`` dropping a table the
    change made itself. Tables that the same migration created before the
    operation are left out (no release knows them yet); tables created by an
    earlier migration of the same change too. The join table dropped by
    ``RemoveField`` of a many-to-many field is reported by ``remove-field``.

    **Lock.** ACCESS EXCLUSIVE on the table (and on the tables whose foreign
    keys point at it), brief. The harm is the broken queries of the previous
    release.

    **Safe alternative.** Expand and contract: delete the model from Django's
    state only in this release, and drop the table in a later release, once
    no server runs code that uses the model::

        # release 1
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel("PageView")],
            database_operations=[],
        )
        # release 2
        migrations.RunSQL("DROP TABLE blog_pageview", migrations.RunSQL.noop)

    **References.**
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate,
    https://www.postgresql.org/docs/current/sql-droptable.html.
    """

    id = "remove-model"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        kinds = database_kinds(op)
        if "RemoveField" in kinds and "DeleteModel" not in kinds:
            return  # a many-to-many join table: remove-field
        dropped: list[tuple[str, str]] = []
        for stmt, facts in parsed(op):
            if facts.kind == sqlfacts.DROP_TABLE:
                dropped.extend(
                    (table, stmt.sql)
                    for table in facts.tables
                    if not made_earlier(ctx.migration, op, table)
                )
        if not dropped:
            return
        if "DeleteModel" in kinds:
            names = [table for table, _ in dropped]
            main = op.old_table if op.old_table in names else names[-1]
            others = [t for t in names if t != main]
            also = f" (and its many-to-many tables {', '.join(others)})" if others else ""
            sqls = list(dict.fromkeys(sql for _, sql in dropped))
            yield self._finding(op, ctx, main, also, sqls)
            return
        for table, sql in dropped:
            # a table already out of Django's state: the old release no longer uses it
            if ctx.is_existing(table) and state_knows(op, table):
                yield self._finding(op, ctx, table, "", [sql])

    def _finding(
        self, op: OperationRecord, ctx: RuleContext, table: str, also: str, sql: list[str]
    ) -> Finding:
        return ctx.finding(
            self,
            op,
            f"{op.kind} drops the table {table}{also} while the previous release still runs: "
            f'every query of the old code on it fails with "relation does not exist" until '
            "the last old server is gone.",
            "Expand/contract: delete the model from Django's state only in this release "
            "(SeparateDatabaseAndState(state_operations=[DeleteModel(...)], "
            f"database_operations=[])), and DROP TABLE {table} with RunSQL in a later release, "
            "once no server runs the old code.",
            table=table,
            sql=sql,
            lock="AccessExclusiveLock",
        )
