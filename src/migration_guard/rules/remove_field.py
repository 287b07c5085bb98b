"""Dropping a column the previous release still uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import actions, database_kinds, made_earlier, parsed, state_knows
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class RemoveField(Rule):
    """Dropping a column breaks the previous release, which still reads and writes it.

    **What it flags.** ``RemoveField`` that drops its column (``ALTER TABLE ...
    DROP COLUMN``), and the same SQL in ``RunSQL`` on a table that existed
    before the change::

        migrations.RemoveField("post", "legacy_html")
        # ALTER TABLE "blog_post" DROP COLUMN "legacy_html" CASCADE

    During a rolling deploy the previous release keeps running for a while.
    Django names every column in its queries, so each SELECT, INSERT and
    UPDATE of the old code on that model fails with "column does not exist"
    until the last old server is gone. ``RemoveField`` of a
    ``ManyToManyField`` drops the automatic join table (``DROP TABLE``): the
    old code's reads and writes of the relation fail the same way, so it is
    flagged too, by this rule. A removal in Django's state only
    (``SeparateDatabaseAndState`` with no database operation) emits no SQL and
    is not flagged. Tables and columns that the same migration created before
    the operation are left out (no release knows them yet); tables created by
    an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (the column is only marked
    dropped; its data stays until the rows are rewritten). The harm is the
    broken queries of the previous release.

    **Safe alternative.** Expand and contract. In this release, remove the
    field from Django's state only (make a NOT NULL column nullable first, so
    the new release's INSERTs still succeed); drop the column in a later
    release, once no server runs code that knows the field::

        # release 1
        migrations.AlterField("post", "legacy_html", models.TextField(null=True))
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.RemoveField("post", "legacy_html")],
            database_operations=[],
        )
        # release 2
        migrations.RunSQL(
            "ALTER TABLE blog_post DROP COLUMN legacy_html",
            "ALTER TABLE blog_post ADD COLUMN legacy_html text NULL",
        )

    **References.**
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate,
    https://www.postgresql.org/docs/current/sql-altertable.html (``DROP
    COLUMN``).
    """

    id = "remove-field"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        kinds = database_kinds(op)
        if kinds & {"DeleteModel", "RenameModel", "AlterModelTable"}:
            return
        django_op = "RemoveField" in kinds
        seen: set[tuple[str, str]] = set()
        for stmt, facts, action in actions(op, sqlfacts.DROP_COLUMN):
            table, column = facts.table, action.column
            if not table or not column or (table, column) in seen:
                continue
            if not django_op and not ctx.is_existing(table):
                continue  # raw SQL on a table of its own making
            if not django_op and not state_knows(op, table, column):
                continue  # already out of Django's state: the old release no longer uses it
            if made_earlier(ctx.migration, op, table, column):
                continue
            seen.add((table, column))
            yield ctx.finding(
                self,
                op,
                f"{op.kind} drops {table}.{column} while the previous release still runs: "
                f"Django names every column in its queries, so the old code's SELECTs, "
                f'INSERTs and UPDATEs on {table} fail with "column does not exist" until the '
                "last old server is gone.",
                "Expand/contract: remove the field from Django's state only in this release "
                "(SeparateDatabaseAndState(state_operations=[RemoveField(...)], "
                "database_operations=[]), after making it nullable if it is NOT NULL), and drop "
                "the column with RunSQL in a later release, once no server runs the old code.",
                table=table,
                sql=[stmt.sql],
                lock="AccessExclusiveLock",
            )
        if not django_op:
            return
        for stmt, facts in parsed(op):
            if facts.kind != sqlfacts.DROP_TABLE:
                continue
            for table in facts.tables:
                if made_earlier(ctx.migration, op, table):
                    continue
                yield ctx.finding(
                    self,
                    op,
                    f"{op.kind} drops the many-to-many table {table} while the previous release "
                    "still runs: the old code's reads and writes of the relation fail with "
                    '"relation does not exist" until the last old server is gone.',
                    "Expand/contract: remove the field from Django's state only in this release "
                    "(SeparateDatabaseAndState(state_operations=[RemoveField(...)], "
                    f"database_operations=[])), and DROP TABLE {table} with RunSQL in a later "
                    "release, once no server runs the old code.",
                    table=table,
                    sql=[stmt.sql],
                    lock="AccessExclusiveLock",
                )
