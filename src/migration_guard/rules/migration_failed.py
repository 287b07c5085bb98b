"""A migration that fails on PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Category, Evidence, Finding, Severity
from .base import Rule

if TYPE_CHECKING:
    from ..collect import MigrationRecord
    from .base import RuleContext


class MigrationFailed(Rule):
    """The migration fails when applied to PostgreSQL.

    **What it flags.** Applying the migration to the scratch database raised:
    RunSQL that PostgreSQL rejects, RunPython code that raises, a constraint
    that existing data violates, a lock wait longer than ``lock_timeout``. The
    finding carries PostgreSQL's own error text (with DETAIL and HINT).

    **Why it matters.** ``manage.py migrate`` fails the same way in
    production: the deploy stops half way. An atomic migration is rolled back;
    a migration with ``atomic = False`` stays applied up to the failing
    statement and needs hand repair.

    **Fix.** Make the operation apply. The audit goes on with the migrations
    that do not depend on this one and reports the others as skipped.
    """

    id = "migration-failed"
    severity = Severity.ERROR
    category = Category.CORRECTNESS
    only_existing_tables = False

    @classmethod
    def for_record(cls, record: MigrationRecord, ctx: RuleContext) -> Finding | None:
        """The finding for a migration that failed on PostgreSQL (None when it applied, or
        when it was stopped by its time limit: ``migration-timeout`` reports that)."""
        if record.error is None or record.timed_out:
            return None
        op = record.operations[record.error_op] if record.error_op is not None else None
        where = f" in {op.kind} (operations[{op.index}])" if op is not None else ""
        return ctx.finding(
            cls(),
            op,
            f"the migration failed on PostgreSQL{where}; nothing of it stays applied"
            + (
                ""
                if record.atomic
                else " except the statements before the failure (atomic = False)"
            )
            + f":\n{record.error}",
            "Fix the operation so that it applies: `python manage.py migrate` would fail the "
            "same way in production.",
            table=op.table if op is not None else None,
            severity=Severity.ERROR,
        ).replace(evidence=Evidence.OBSERVED, category=Category.CORRECTNESS)

    @classmethod
    def before_change(cls, app_label: str, name: str, error: str) -> Finding:
        """A migration of the base (before the change) that failed: the change cannot run."""
        return Finding(
            rule=cls.id,
            severity=Severity.ERROR,
            category=Category.CORRECTNESS,
            message=f"{app_label}.{name} (before the change) failed on PostgreSQL:\n{error}",
            fix=(
                "Make this migration apply on PostgreSQL "
                "(`python manage.py migrate` fails the same way)."
            ),
            app_label=app_label,
            migration=name,
        )
