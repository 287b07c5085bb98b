"""The previous release's queries waited on the migration (``--rehearse``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Category, Evidence, Finding, Severity, Traffic
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


def waits_text(traffic: Traffic) -> str:
    """ "writes waited up to 2.4 s (3 of 40 queries took 1 s or longer)"."""
    reads, writes = traffic.longest(reads=True), traffic.longest(reads=False)
    threshold = traffic.threshold_ms
    who = (
        "reads and writes"
        if reads >= threshold and writes >= threshold
        else ("reads" if reads >= threshold else "writes")
    )
    return (
        f"{who} waited up to {traffic.longest_wait_ms / 1000:.1f} s ({traffic.over_threshold} "
        f"of {traffic.queries} queries took {threshold / 1000:g} s or longer)"
    )


class ObservedBlockedTraffic(Rule):
    """The rehearsal saw the previous release's queries wait on the migration past the threshold.

    **What it flags.** With ``--rehearse``, while each migration of the change
    runs on the scratch database with rows in its tables, other connections
    send the previous release's queries (reads and writes through Django's
    ORM, at a set rate). This rule reports a table on which some of them took
    the threshold (``rehearse_threshold``, 1 s by default) or longer, when no
    locking rule predicted a blocking lock on it: what the old code's
    requests would wait during the deploy, measured, not inferred. It names
    the operation whose lock they met and, with ``--stats-url``, the work
    that operation did scaled to production's row count (an estimate).

    It also reports the **lock queue**: with ``rehearse_long_read`` a read
    transaction is held on each table as the migration starts (a slow report).
    A migration that asks for ACCESS EXCLUSIVE waits for it, and every query
    that arrives meanwhile, reads included, waits behind the migration. With
    ``lock_timeout`` the migration gives up instead, fails fast, and the
    traffic goes on.

    When a locking rule predicted the lock (``add-index-non-concurrent``,
    ``set-not-null``...), that finding carries the measurement instead.

    **Lock.** Whatever the migration held or queued for on the table, for as
    long as the measured wait.

    **Fix.** Do the work without the long lock (``CREATE INDEX
    CONCURRENTLY``, ``NOT VALID`` then ``VALIDATE CONSTRAINT``,
    expand/contract, batched backfills). For the lock queue: set
    ``lock_timeout`` for migrations (``MIGRATION_GUARD['lock_timeout']``, the
    connection's ``options``, or ``SET lock_timeout`` in the migration) so
    the migration gives up and is retried instead of queueing every request.
    """

    id = "observed-blocked-traffic"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True

    @classmethod
    def for_table(cls, ctx: RuleContext, op: OperationRecord | None, traffic: Traffic) -> Finding:
        """The finding for the long waits of ``traffic`` (no rule predicted them)."""
        who = f"operations[{op.index}] {op.kind}" if op is not None else "the migration"
        message = (
            f"While {who} ran, the previous release's {waits_text(traffic)} on "
            f"{traffic.table}, at {traffic.rows:,} rows."
        )
        if traffic.lock_queue:
            message += (
                " The migration itself waited for its lock behind another transaction (a "
                f"long read), and the queries on {traffic.table} queued behind the migration: "
                "the lock queue."
            )
            if ctx.lock_timeout_configured:
                message += (
                    " lock_timeout is set for migrations, but it let the migration wait this "
                    "long, and every request queued for as long."
                )
                fix = (
                    "Lower lock_timeout for migrations to less than requests can wait (a second "
                    "or two, or less on busy tables): the migration then gives up sooner instead "
                    "of queueing every request, and the deploy retries it."
                )
            else:
                message += (
                    " Without lock_timeout it lasts as long as the slowest transaction on the "
                    "table."
                )
                fix = (
                    "Set lock_timeout for migrations (MIGRATION_GUARD['lock_timeout'] = '2s', "
                    "'-c lock_timeout=2s' in the connection's options, or SET lock_timeout in "
                    "the migration): the migration then gives up instead of queueing every "
                    "request, and the deploy retries it."
                )
        else:
            fix = (
                "Do the work without a long lock: CREATE INDEX CONCURRENTLY, NOT VALID "
                "constraints validated later, expand/contract for type changes, backfills "
                "in batches outside the DDL transaction; or run it when the table is quiet."
            )
        estimate = traffic.estimate
        if estimate is not None:
            message += (
                f" At production's {estimate.production_rows:,} rows the {estimate.work} "
                f"would take about {estimate.seconds:.1f} s (estimate, {estimate.scaling})."
            )
        message += " No rule predicted it; the rehearsal measured it."
        return ctx.finding(cls(), op, message, fix, table=traffic.table).replace(
            evidence=Evidence.OBSERVED, traffic=(traffic,)
        )

    @staticmethod
    def confirms(finding: Finding) -> bool:
        """A finding that already speaks for a blocking lock (its traffic is attached)."""
        return finding.category in (Category.LOCKING, Category.DATA) and finding.rule not in (
            "lock-timeout-missing",
            ObservedBlockedTraffic.id,
        )
