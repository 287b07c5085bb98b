"""A table rename (AlterModelTable, RunSQL) under the previous release."""

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


class AlterDbTable(Rule):
    """Renaming a table breaks the previous release, which still queries the old name.

    **What it flags.** ``AlterModelTable`` (a new ``Meta.db_table``) that
    renames the table, with the model's automatic many-to-many tables, and
    ``ALTER TABLE ... RENAME TO`` in ``RunSQL`` on a table that existed before
    the change::

        migrations.AlterModelTable("profile", "accounts_user_profile")
        # ALTER TABLE "accounts_profile" RENAME TO "accounts_user_profile"

    During a rolling deploy the previous release keeps running for a while,
    and every query of its code on the model fails with "relation does not
    exist" until the last old server is gone. Not flagged when the migration
    also creates a view under the old name (old code keeps working through
    it), and ``RunSQL`` renaming a table the change made itself. Table renames
    by ``RenameModel`` are reported by ``rename-model``;
    ``AlterModelTableComment`` renames nothing. Tables that the same migration
    created before the operation are left out (no release knows them yet);
    tables created by an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (catalog only). The harm
    is the broken queries of the previous release.

    **Safe alternative.** Expand and contract. Keep the old name while the
    previous release may run: either leave ``Meta.db_table`` as it is, or
    rename the table and keep an updatable view under the old name until
    every server runs the new code, changing Django's state alongside::

        # release 1
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterModelTable("profile", "accounts_user_profile"),
            ],
            database_operations=[
                migrations.RunSQL(
                    [
                        "ALTER TABLE accounts_profile RENAME TO accounts_user_profile",
                        "CREATE VIEW accounts_profile AS SELECT * FROM accounts_user_profile",
                    ],
                    [
                        "DROP VIEW accounts_profile",
                        "ALTER TABLE accounts_user_profile RENAME TO accounts_profile",
                    ],
                ),
            ],
        )
        # release 2
        migrations.RunSQL("DROP VIEW accounts_profile",
                          "CREATE VIEW accounts_profile AS "
                          "SELECT * FROM accounts_user_profile")

    **References.**
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#altermodeltable,
    https://www.postgresql.org/docs/current/sql-altertable.html (``RENAME``),
    https://www.postgresql.org/docs/current/sql-createview.html (updatable
    views).
    """

    id = "alter-db-table"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        kinds = database_kinds(op)
        if kinds & {"RenameModel", "RenameField"}:
            return  # rename-model / rename-field
        django_op = "AlterModelTable" in kinds
        renames = []
        for stmt, facts, action in actions(op, sqlfacts.RENAME_TABLE):
            table = facts.table
            if not table or view_named(ctx.migration, table):
                continue
            if made_earlier(ctx.migration, op, table):
                continue
            if not django_op and not ctx.is_existing(table):
                continue  # raw SQL on a table of its own making
            renames.append((table, action.new_name or "?", stmt.sql))
        if not renames:
            return
        if django_op:
            main = next((r for r in renames if r[0] == op.old_table), renames[0])
            others = [f"{old} to {new}" for old, new, _ in renames if old != main[0]]
            also = f" (and its many-to-many tables {', '.join(others)})" if others else ""
            yield self._finding(op, main[0], main[1], also, [r[2] for r in renames], ctx)
            return
        for old, new, sql in renames:
            yield self._finding(op, old, new, "", [sql], ctx)

    def _finding(
        self,
        op: OperationRecord,
        old: str,
        new: str,
        also: str,
        sql: list[str],
        ctx: RuleContext,
    ) -> Finding:
        return ctx.finding(
            self,
            op,
            f"{op.kind} renames the table {old} to {new}{also} while the previous release "
            f"still runs: the old code's queries on {old} fail with \"relation does not "
            'exist" until the last old server is gone.',
            f"Expand/contract: keep Meta.db_table = {old!r} for now, or do the rename in "  # noqa: S608 (advice text, not a query)
            "SeparateDatabaseAndState with RunSQL that also creates an updatable view named "
            f"{old} (CREATE VIEW {old} AS SELECT * FROM {new}), and drop the view in a later "
            "release, once no server runs the old code.",
            table=old,
            sql=list(dict.fromkeys(sql)),
            lock="AccessExclusiveLock",
        )
