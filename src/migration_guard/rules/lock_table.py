"""An explicit LOCK TABLE in a migration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..collect import ORM
from ..findings import Blocks, Category, Finding, Severity
from . import _locks
from .base import Prediction, Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord


class LockTable(Rule):
    """An explicit LOCK TABLE blocks the table until the migration commits.

    **What it flags.** ``LOCK TABLE`` in a ``RunSQL``, or run by ``RunPython``
    code, on a table that existed before the change, in a mode that blocks
    reads or writes: ACCESS EXCLUSIVE (the default when no mode is given),
    EXCLUSIVE, SHARE ROW EXCLUSIVE or SHARE::

        migrations.RunSQL("LOCK TABLE shop_order IN SHARE ROW EXCLUSIVE MODE; UPDATE ...")

    ACCESS SHARE, ROW SHARE, ROW EXCLUSIVE and SHARE UPDATE EXCLUSIVE block
    neither reads nor writes and are not flagged.

    **Lock.** The requested mode: ACCESS EXCLUSIVE blocks reads and writes;
    EXCLUSIVE, SHARE ROW EXCLUSIVE and SHARE block writes. There is no UNLOCK:
    the lock lasts until the transaction ends, that is until the last
    operation of an atomic migration has run, and whatever the migration does
    after it (an ``UPDATE`` of every row, an index build) runs with the table
    blocked. The request itself waits behind every long transaction on the
    table while the queries behind it queue.

    **Safe alternative.** Do not lock whole tables: let each statement take
    the lock it needs, and make data changes in small batches that lock only
    their rows, in a migration with ``atomic = False``::

        def recompute_totals(apps, schema_editor):
            Order = apps.get_model("shop", "Order")
            last = 0
            while True:
                with transaction.atomic():
                    batch = list(Order.objects.select_for_update()
                                 .filter(pk__gt=last).order_by("pk")[:1000])
                    if not batch:
                        return
                    ...  # recompute the totals of this batch
                last = batch[-1].pk

    **References.** PostgreSQL, "LOCK":
    https://www.postgresql.org/docs/current/sql-lock.html ; "Explicit
    Locking", table-level lock modes:
    https://www.postgresql.org/docs/current/explicit-locking.html
    """

    id = "lock-table"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    #: The weakest mode this rule flags: the trace confirms when it sees this one or stronger.
    predicts = Prediction(lock="ShareLock")

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for stmt in _locks.executed(op, orm=True):
            facts = stmt.facts
            if facts.kind != sqlfacts.LOCK:
                continue
            try:
                mode = lockmodes.normalise(facts.lock_mode or "ACCESS EXCLUSIVE")
            except ValueError:
                continue
            blocked = lockmodes.blocks(mode)
            if blocked is Blocks.NOTHING:
                continue
            name = lockmodes.sql_name(mode)
            if ctx.migration.atomic:
                until = "until the migration's transaction commits, after its last operation"
            elif stmt.origin == ORM:
                until = "until the transaction of the RunPython that runs it ends"
            else:
                until = (
                    "until its transaction ends (with atomic = False there is none, and "
                    "PostgreSQL rejects it: LOCK TABLE can only be used in transaction blocks)"
                )
            for table in _locks.existing_tables(facts, ctx.migration):
                yield ctx.finding(
                    self,
                    op,
                    f"LOCK TABLE takes {name} on {table}, which blocks {blocked.value} of "
                    f"{table} {until}: everything the migration does after it runs with "
                    f"{table} blocked, and the request itself queues behind any long "
                    "transaction while every query on the table queues behind it.",
                    "Remove the LOCK TABLE: let each statement take the lock it needs and change "
                    "data in small batches that lock only their rows (select_for_update per "
                    "batch, in a migration with atomic = False).",
                    table=table,
                    sql=[stmt.sql],
                    lock=mode,
                )
