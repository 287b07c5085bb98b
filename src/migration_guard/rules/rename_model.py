"""RenameModel that renames the table under the previous release."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import actions, database_kinds, made_earlier, view_named
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class RenameModel(Rule):
    """Renaming a model's table breaks the previous release, which still queries the old name.

    **What it flags.** ``RenameModel`` whose SQL renames the model's table
    (``ALTER TABLE ... RENAME TO``). Django also renames the automatic
    many-to-many tables of the model and the columns that point at it in
    other models' join tables; the finding lists them::

        migrations.RenameModel("Invitation", "Invite")
        # ALTER TABLE "accounts_invitation" RENAME TO "accounts_invite"

    During a rolling deploy the previous release keeps running for a while,
    and every query of its code on the model fails with "relation does not
    exist" until the last old server is gone. Not flagged when
    ``Meta.db_table`` keeps the table's name and nothing else is renamed
    (Django emits no SQL), or when the migration creates a view under the old
    name. Tables that the same migration created before the operation are left out
    (no release knows them yet); tables created by an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (catalog only). The harm
    is the broken queries of the previous release.

    **Safe alternative.** Rename the class, not the table: pin the table's
    name with ``Meta.db_table`` before renaming, so the rename happens in
    Django's state only::

        migrations.AlterModelTable("invitation", "accounts_invitation")
        migrations.RenameModel("Invitation", "Invite")  # no table rename now

    If the table itself must change its name, do it in a later release, once
    no server runs the old code, or keep an updatable view under the old name
    while both releases run (``ALTER TABLE accounts_invitation RENAME TO
    accounts_invite; CREATE VIEW accounts_invitation AS SELECT * FROM
    accounts_invite``).

    **References.**
    https://docs.djangoproject.com/en/stable/ref/models/options/#db-table,
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#renamemodel,
    https://www.postgresql.org/docs/current/sql-altertable.html (``RENAME``),
    https://www.postgresql.org/docs/current/sql-createview.html (updatable
    views).
    """

    id = "rename-model"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        if "RenameModel" not in database_kinds(op):
            return
        tables: list[tuple[str, str]] = []
        columns: list[str] = []
        sql: list[str] = []
        for stmt, facts, action in actions(op, sqlfacts.RENAME_TABLE, sqlfacts.RENAME_COLUMN):
            if not facts.table or made_earlier(ctx.migration, op, facts.table):
                continue
            if action.kind == sqlfacts.RENAME_TABLE:
                if view_named(ctx.migration, facts.table):
                    continue
                tables.append((facts.table, action.new_name or "?"))
            else:
                columns.append(f"{facts.table}.{action.column} to {action.new_name}")
            sql.append(stmt.sql)
        if not tables and not columns:
            return
        main = next((t for t in tables if t[0] == op.old_table), tables[0] if tables else None)
        parts = []
        if main is not None:
            parts.append(f"renames the table {main[0]} to {main[1]}")
        others = [f"{old} to {new}" for old, new in tables if (old, new) != main]
        if others:
            parts.append(f"the many-to-many tables {', '.join(others)}")
        if columns:
            parts.append(f"the join-table columns {', '.join(columns)}")
        what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        if main is None:
            what = "renames " + what
        table = main[0] if main is not None else columns[0].split(".", 1)[0]
        old = main[0] if main is not None else "the old name"
        yield ctx.finding(
            self,
            op,
            f"{op.kind} {what} while the previous release still runs: the old code's queries "
            f'use the old names and fail with "does not exist" errors until the last old '
            "server is gone.",
            f"Keep the table: pin Meta.db_table = {old!r} (AlterModelTable) before the "
            "RenameModel, so the rename only changes Django's state; rename the table itself "
            "in a later release, once no server runs the old code, or keep an updatable view "
            "under the old name meanwhile.",
            table=table,
            sql=list(dict.fromkeys(sql)),
            lock="AccessExclusiveLock",
        )
