"""RenameField that renames the column under the previous release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import actions, database_kinds, made_earlier
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class RenameField(Rule):
    """Renaming a field's column breaks the previous release, which still uses the old name.

    **What it flags.** ``RenameField`` that renames the column
    (``ALTER TABLE ... RENAME COLUMN``), or, for a many-to-many field, its
    automatic join table (``ALTER TABLE ... RENAME TO``)::

        migrations.RenameField("profile", "bio", "about")
        # ALTER TABLE "accounts_profile" RENAME COLUMN "bio" TO "about"

    During a rolling deploy the previous release keeps running for a while;
    Django names every column in its queries, so each of its queries on the
    model fails with "column does not exist" until the last old server is
    gone. Not flagged when ``db_column`` keeps the column's name (Django then
    emits no SQL). ``RENAME COLUMN`` written in ``RunSQL`` or caused by a new
    ``db_column`` is reported by ``alter-db-column``. Tables and columns that
    the same migration created before the operation are left out (no release
    knows them yet); tables created by an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (catalog only). The harm
    is the broken queries of the previous release.

    **Safe alternative.** Rename the attribute, not the column: pin the old
    column name with ``db_column`` and rename in Django's state only (no SQL
    runs)::

        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField("profile", "bio",
                                      models.TextField(blank=True, db_column="bio")),
                migrations.RenameField("profile", "bio", "about"),
            ],
            database_operations=[],
        )

    If the column itself must change its name, expand and contract: add the
    new column, write both, backfill, switch reads, and drop the old column
    in a later release.

    **References.**
    https://docs.djangoproject.com/en/stable/ref/models/fields/#db-column,
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate,
    https://www.postgresql.org/docs/current/sql-altertable.html (``RENAME``).
    """

    id = "rename-field"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        if "RenameField" not in database_kinds(op):
            return
        for stmt, facts, action in actions(op, sqlfacts.RENAME_COLUMN, sqlfacts.RENAME_TABLE):
            table = facts.table
            column = action.column if action.kind == sqlfacts.RENAME_COLUMN else None
            if not table or made_earlier(ctx.migration, op, table, column):
                continue
            if action.kind == sqlfacts.RENAME_COLUMN:
                what = f"renames the column {table}.{action.column} to {action.new_name}"
                gone = "column"
                pin = f"db_column={action.column!r}"
            else:
                what = f"renames the many-to-many table {table} to {action.new_name}"
                gone = "relation"
                pin = f"ManyToManyField(db_table={table!r})"
            yield ctx.finding(
                self,
                op,
                f"{op.kind} {what} while the previous release still runs: the old code's "
                f'queries on {table} use the old name and fail with "{gone} does not exist" '
                "until the last old server is gone.",
                f"Rename the attribute only: pin the old name with {pin} (AlterField) and put "
                "the RenameField in "
                "SeparateDatabaseAndState.state_operations with no database_operations; rename "
                "the column itself, if ever, by expand/contract over later releases.",
                table=table,
                sql=[stmt.sql],
                lock="AccessExclusiveLock",
            )
