"""TRUNCATE of an existing table in a migration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class TruncateTable(Rule):
    """TRUNCATE empties a table in use, under an ACCESS EXCLUSIVE lock.

    **What it flags.** ``TRUNCATE`` in a ``RunSQL``, or run by ``RunPython``
    code, of a table that existed before the change::

        migrations.RunSQL("TRUNCATE blog_pageview", migrations.RunSQL.noop)

    A table created earlier in the same change is not flagged.

    **Lock.** ACCESS EXCLUSIVE on every table truncated (and, with
    ``CASCADE``, on the tables referencing them): reads and writes wait until
    the migration's transaction commits. Worse, every row is gone, for the
    code of the previous release still running during the deploy too, and
    ``reverse_sql`` cannot bring the rows back.

    **Safe alternative.** If the data must go, delete it in batches from a
    non-atomic data migration (or a management command run after the deploy),
    so only the rows of one batch are locked at a time and the table stays
    usable::

        def purge(apps, schema_editor):
            PageView = apps.get_model("blog", "PageView")
            while pks := list(PageView.objects.values_list("pk", flat=True)[:5000]):
                PageView.objects.filter(pk__in=pks).delete()

        class Migration(migrations.Migration):
            atomic = False
            operations = [migrations.RunPython(purge, migrations.RunPython.noop)]

    To drop a table that no code reads any more, remove the model from the
    code first, then ``DeleteModel`` in a later release.

    **References.** PostgreSQL, "TRUNCATE":
    https://www.postgresql.org/docs/current/sql-truncate.html
    """

    id = "truncate-table"
    severity = Severity.ERROR
    category = Category.DATA
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock")

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op, orm=True):
            facts = stmt.facts
            if facts.kind != sqlfacts.TRUNCATE:
                continue
            for table in _locks.existing_tables(facts, ctx.migration):
                yield ctx.finding(
                    self,
                    op,
                    f"TRUNCATE deletes every row of {table} and takes ACCESS EXCLUSIVE on it: "
                    f"reads and writes of {table} wait until the migration commits, and the "
                    "previous release, still serving during the deploy, finds the table empty. "
                    "The rows cannot be restored by unapplying the migration.",
                    "Delete the rows in batches from a data migration with atomic = False (or "
                    "a management command after the deploy); to drop the table, remove the "
                    "model from the code first and DeleteModel in a later release.",
                    table=table,
                    sql=[stmt.sql],
                    lock="AccessExclusiveLock",
                )
