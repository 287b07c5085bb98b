"""RunPython without reverse code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..findings import Category, Finding, Severity
from ._operations import callable_name, database_operations, previous_migration
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class RunPythonNoReverse(Rule):
    """RunPython without reverse_code makes the migration irreversible.

    **What it flags.** A ``RunPython`` operation (also inside
    ``SeparateDatabaseAndState``) given no ``reverse_code``::

        migrations.RunPython(fill_slugs)

    ``reverse_code=migrations.RunPython.noop`` is reversible and not flagged.

    **Lock.** None: this is about rolling back. ``manage.py migrate <app>
    <previous>`` raises ``IrreversibleError`` on this operation, so neither
    this migration nor any earlier one of the app can be unapplied once it ran:
    a failed deploy cannot be rolled back with the migrations, only by hand.

    **Safe alternative.** Give the operation a reverse function that undoes the
    data change, or ``RunPython.noop`` when unapplying needs nothing (the
    column the data lives in is dropped by the reverse of an earlier
    operation, the change is harmless to keep)::

        migrations.RunPython(fill_slugs, migrations.RunPython.noop)

    **References.** Django, "RunPython":
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#runpython
    """

    id = "run-python-no-reverse"
    severity = Severity.WARNING
    category = Category.REVERSIBILITY
    only_existing_tables = False
    predicts = None

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        from django.db.migrations.operations.special import RunPython

        for operation in database_operations(op.operation):
            if not isinstance(operation, RunPython) or operation.reverse_code is not None:
                continue
            m = ctx.migration
            previous = previous_migration(m.migration)
            yield ctx.finding(
                self,
                op,
                f"RunPython({callable_name(operation.code)}) has no reverse_code: "
                f"`{ctx.manage} migrate {m.app_label} {previous}` raises IrreversibleError "
                f"here, so {m.app_label}.{m.name} and every migration before it cannot be "
                "unapplied once it has run: a bad deploy cannot be rolled back.",
                "Pass reverse_code: a function that undoes the data change, or "
                "migrations.RunPython.noop when unapplying needs nothing.",
                table=op.table,
            )
