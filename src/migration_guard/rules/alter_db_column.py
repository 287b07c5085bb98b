"""A column rename (new db_column, RunSQL) under the previous release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import (
    actions,
    database_kinds,
    made_earlier,
    migration_statements,
    state_knows,
)
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class AlterDbColumn(Rule):
    """Renaming a column breaks the previous release, which still uses the old name.

    **What it flags.** ``AlterField`` whose new ``db_column`` renames the
    column (``ALTER TABLE ... RENAME COLUMN``), and ``RENAME COLUMN`` written
    in ``RunSQL`` on a table that existed before the change::

        migrations.AlterField("comment", "body", models.TextField(db_column="content"))
        # ALTER TABLE "blog_comment" RENAME COLUMN "body" TO "content"

    During a rolling deploy the previous release keeps running for a while;
    Django names every column in its queries, so each of its queries on the
    model fails with "column does not exist" until the last old server is
    gone. Column renames by ``RenameField`` are reported by ``rename-field``
    and those by ``RenameModel`` by ``rename-model``; every other column
    rename, ``RunSQL`` included, is reported here (``RunSQL`` only on tables
    that existed before the change). Tables and columns that the same
    migration created before the operation are left out (no release knows them
    yet); tables created by an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (catalog only). The harm
    is the broken queries of the previous release.

    **Safe alternative.** Keep the column's name: an attribute can have any
    name with ``db_column`` pointing at the existing column, so the change
    stays in Django's state::

        migrations.AlterField("comment", "body", models.TextField(db_column="body"))

    If the column itself must change its name, expand and contract over
    several releases: add the new column (``AddField``, nullable), write both,
    backfill in batches, switch reads, and drop the old column in a later
    release through ``SeparateDatabaseAndState``.

    **References.**
    https://docs.djangoproject.com/en/stable/ref/models/fields/#db-column,
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate,
    https://www.postgresql.org/docs/current/sql-altertable.html (``RENAME``).
    """

    id = "alter-db-column"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        kinds = database_kinds(op)
        if kinds & {"RenameField", "RenameModel"}:
            return  # rename-field / rename-model
        django_op = "AlterField" in kinds
        # a swap (col -> col__old, col__new -> col) in one migration keeps every name
        renamed_to = {
            (facts.table, action.new_name)
            for _, _, facts in migration_statements(ctx.migration)
            if facts.kind == sqlfacts.ALTER_TABLE
            for action in facts.actions
            if action.kind == sqlfacts.RENAME_COLUMN
        }
        for stmt, facts, action in actions(op, sqlfacts.RENAME_COLUMN):
            table = facts.table
            if not table or not action.column:
                continue
            if ctx.migration.atomic and (table, action.column) in renamed_to:
                continue  # the old name is taken again in the same transaction
            if not django_op and not state_knows(op, table, action.column):
                continue  # a column Django's state does not have: no old code names it
            if not django_op and not ctx.is_existing(table):
                continue  # raw SQL on a table of its own making
            if made_earlier(ctx.migration, op, table, action.column):
                continue
            yield ctx.finding(
                self,
                op,
                f"{op.kind} renames the column {table}.{action.column} to {action.new_name} "
                f"while the previous release still runs: the old code's queries on {table} "
                f'name {action.column} and fail with "column does not exist" until the last '
                "old server is gone.",
                f"Keep the column: leave db_column={action.column!r} on the field (a state-only "
                "change); to really rename it, expand/contract over releases (add the new "
                "column, write both, backfill, switch reads, then drop the old one through "
                "SeparateDatabaseAndState).",
                table=table,
                sql=[stmt.sql],
                lock="AccessExclusiveLock",
            )
