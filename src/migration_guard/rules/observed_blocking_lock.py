"""Whole-table work under a blocking lock that the trace observed and no static rule predicted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import pglocks
from ..findings import Category, Finding, Lock, Severity
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class ObservedTableWorkUnderLock(Rule):
    """The trace saw a whole-table rewrite or scan under a lock that blocks traffic.

    **What it flags.** While applying the migration, PostgreSQL held a lock
    that blocks reads or writes on a table that existed before the change, and
    rewrote the table (its ``relfilenode`` changed) or scanned it in full
    (``pg_stat_xact_user_tables.seq_scan`` grew) while it held it. No static
    rule predicted it: typically RunSQL, RunPython issuing DDL, a custom
    operation, a third-party field, or SQL Django deferred to the end of the
    migration (a foreign key checked against a table that a data step of the
    same migration filled). Work done by deferred SQL is reported where it
    runs, at the end of the migration, under the operation that queued it.
    Blocking locks held on other existing tables while the work ran (taken
    earlier in the same transaction) are named too: their traffic waits as
    long.

    **Lock.** Whatever the trace recorded (for example ACCESS EXCLUSIVE, which
    blocks reads and writes, or SHARE, which blocks writes), held for a time
    proportional to the table's size.

    **Fix.** Do the work without the long lock: ``CREATE INDEX CONCURRENTLY``,
    constraints added ``NOT VALID`` and validated separately, expand/contract
    for type changes, batched backfills outside the DDL transaction, data
    steps in a migration of their own.
    """

    id = "observed-table-work-under-lock"
    severity = Severity.ERROR
    category = Category.LOCKING

    @classmethod
    def for_work(
        cls,
        ctx: RuleContext,
        op: OperationRecord,
        *,
        relation: str,
        mode: str,
        rewrote: bool,
        deferred: bool,
        also: Sequence[Lock] = (),
    ) -> Finding:
        """The finding for ``op`` (or the SQL it deferred) working through ``relation``."""
        who = (
            f"SQL that {op.kind} (operations[{op.index}]) deferred to the end of the migration"
            if deferred
            else op.kind
        )
        work = "rewrote" if rewrote else "scanned"
        message = (
            f"{who} {work} the whole of {relation} while holding {pglocks.sql_name(mode)} "
            f"on it: {pglocks.blocks(mode).value} of {relation} wait for as long as that "
            "takes on a big table."
        )
        if also:
            held = ", ".join(
                f"{pglocks.sql_name(lock.mode)} on {lock.relation}"
                + (f" (taken by {lock.taken_by})" if lock.taken_by else "")
                for lock in also
            )
            message += (
                f" Meanwhile the transaction also held {held}: traffic on "
                f"{'that table' if len(also) == 1 else 'those tables'} waits as long."
            )
        message += " No rule predicted this; the trace saw it."
        if deferred:
            message += (
                " Django runs deferred SQL (foreign keys, indexes) after every operation of "
                "the migration, so a data step earlier in the migration makes it work "
                "through the rows that step wrote."
            )
        fix = (
            "Split the work so the table is not rewritten or scanned under this lock "
            "(NOT VALID constraints, CONCURRENTLY indexes, expand/contract), or run it "
            "in a maintenance window."
        )
        if deferred:
            fix = (
                "Move the data step into a migration of its own after this one, so the "
                "deferred constraint is checked while the new table is still empty; or "
                + fix[0].lower()
                + fix[1:]
            )
        return ctx.finding(cls(), op, message, fix, table=relation)
