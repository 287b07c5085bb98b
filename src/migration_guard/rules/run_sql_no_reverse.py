"""RunSQL without reverse SQL."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..findings import Category, Finding, Severity
from ._operations import database_operations, previous_migration
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class RunSqlNoReverse(Rule):
    """RunSQL without reverse_sql makes the migration irreversible.

    **What it flags.** A ``RunSQL`` operation (also inside
    ``SeparateDatabaseAndState``) given no ``reverse_sql``::

        migrations.RunSQL("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    ``reverse_sql=migrations.RunSQL.noop`` is reversible and not flagged.

    **Lock.** None: this is about rolling back. ``manage.py migrate <app>
    <previous>`` raises ``IrreversibleError`` on this operation, so neither
    this migration nor any earlier one of the app can be unapplied once it ran:
    a failed deploy cannot be rolled back with the migrations, only by hand.

    **Safe alternative.** Give the SQL that undoes it, or ``RunSQL.noop`` when
    unapplying needs nothing::

        migrations.RunSQL(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS post_title_trgm ON blog_post "
            "USING gin (title gin_trgm_ops)",
            reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS post_title_trgm",
        )

    **References.** Django, "RunSQL":
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#runsql
    """

    id = "run-sql-no-reverse"
    severity = Severity.WARNING
    category = Category.REVERSIBILITY
    only_existing_tables = False
    predicts = None

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        from django.db.migrations.operations.special import RunSQL

        for operation in database_operations(op.operation):
            if not isinstance(operation, RunSQL) or operation.reverse_sql is not None:
                continue
            m = ctx.migration
            previous = previous_migration(m.migration)
            first = next((stmt.facts for stmt in op.statements), None)
            table = first.table if first is not None else None
            yield ctx.finding(
                self,
                op,
                f"RunSQL has no reverse_sql: `{ctx.manage} migrate {m.app_label} {previous}` "
                f"raises IrreversibleError here, so {m.app_label}.{m.name} and every migration "
                "before it cannot be unapplied once it has run: a bad deploy cannot be rolled "
                "back.",
                "Pass reverse_sql with the SQL that undoes it, or migrations.RunSQL.noop when "
                "unapplying needs nothing.",
                table=table,
                sql=[stmt.sql for stmt in op.statements][:3],
            )
