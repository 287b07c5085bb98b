"""A migration that runs past its time limit."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..findings import Category, Evidence, Finding, Severity
from ..watchdog import format_seconds
from .base import Rule

if TYPE_CHECKING:
    from ..collect import MigrationRecord
    from .base import RuleContext


class MigrationTimeout(Rule):
    """The migration ran longer than its time limit and was stopped.

    **What it flags.** A migration still running when ``--migration-timeout``
    (setting ``migration_timeout``, 10 minutes by default) passes: a ``RunSQL``
    statement that waits or works that long, or ``RunPython`` code in a loop
    that does not end. The audit cancels the statement running (the limit is
    also the connection's ``statement_timeout``), stops the Python code, rolls
    the migration back, and names the operation that was running.

    **Why.** What the audit's scratch database cannot finish in that time,
    production, with more rows and live traffic, will not finish quicker, and
    everything it locks stays locked meanwhile. A migration that never ends
    (``while True``, ``pg_sleep``) would also hang the deploy itself.

    **Safe alternative.** Make long data changes a batched, resumable job
    outside the migration (a management command run after the deploy), and
    keep migrations to schema changes and small, bounded data fixes. If the
    work really takes long and is safe to run during a deploy, raise the limit
    for the audit: ``--migration-timeout 30min``.

    **References.** PostgreSQL, ``statement_timeout``:
    https://www.postgresql.org/docs/current/runtime-config-client.html ;
    docs/security.md and docs/reliability.md of this project.
    """

    id = "migration-timeout"
    severity = Severity.ERROR
    category = Category.CORRECTNESS
    only_existing_tables = False

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if not migration.timed_out:
            return
        index = migration.error_op
        op = migration.operations[index] if index is not None else None
        where = f" in {op.kind} (operations[{op.index}])" if op is not None else ""
        limit = format_seconds(ctx.config.migration_timeout)
        yield ctx.finding(
            self,
            op,
            f"{ctx.migration.app_label}.{ctx.migration.name} was still running after {limit}"
            f"{where}, so the audit stopped it and rolled it back: in production it would "
            "run at least as long, holding its locks, or never end.",
            "Move long data work out of the migration (a batched job run after the deploy), "
            "or, if it is safe and only slow, raise the limit: --migration-timeout 30min.",
            table=op.table if op is not None else None,
        ).replace(evidence=Evidence.OBSERVED)
