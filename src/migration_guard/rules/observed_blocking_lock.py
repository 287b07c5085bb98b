"""Blocking the trace observed and no static rule predicted."""

from __future__ import annotations

from ..findings import Category, Severity
from .base import Rule


class ObservedTableWorkUnderLock(Rule):
    """The trace saw a whole-table rewrite or scan under a lock that blocks traffic.

    **What it flags.** While applying the migration, PostgreSQL held a lock
    that blocks reads or writes on a table that existed before the change, and
    in the same operation rewrote the table (its ``relfilenode`` changed) or
    scanned it in full (``pg_stat_xact_user_tables.seq_scan`` grew). No static
    rule predicted it: typically RunSQL, RunPython issuing DDL, a custom
    operation or a third-party field.

    **Lock.** Whatever the trace recorded (for example ACCESS EXCLUSIVE, which
    blocks reads and writes, or SHARE, which blocks writes), held for a time
    proportional to the table's size.

    **Fix.** Do the work without the long lock: ``CREATE INDEX CONCURRENTLY``,
    constraints added ``NOT VALID`` and validated separately, expand/contract
    for type changes, batched backfills outside the DDL transaction.
    """

    id = "observed-table-work-under-lock"
    severity = Severity.ERROR
    category = Category.LOCKING


class ObservedBlockingLock(Rule):
    """The trace saw a brief lock that blocks traffic, with no lock_timeout set.

    **What it flags.** An operation took a lock that blocks reads or writes on
    a table that existed before the change, briefly (catalog-only work), and
    ``lock_timeout`` is not configured for migrations.

    **Why it matters.** The lock request waits behind any long-running
    transaction on that table, and every other query on the table queues
    behind the waiting request: a brief lock becomes an outage.

    **Fix.** Set ``lock_timeout`` for the migration connection
    (``MIGRATION_GUARD = {"lock_timeout": "5s"}``, which migration_guard applies
    to ``manage.py migrate``, or ``OPTIONS = {"options": "-c lock_timeout=5s"}``)
    and retry the deploy when it times out.
    """

    id = "observed-blocking-lock"
    severity = Severity.WARNING
    category = Category.LOCKING
