"""A migration that fails on PostgreSQL."""

from __future__ import annotations

from ..findings import Category, Severity
from .base import Rule


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
