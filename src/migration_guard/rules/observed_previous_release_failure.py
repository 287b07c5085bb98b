"""The previous release's queries failed against the migrated schema (``--rehearse``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import Category, Evidence, Finding, Severity, Traffic
from .base import Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


def failures_text(traffic: Traffic) -> str:
    """ "INSERT 12 of 12 times (ERROR: null value in column ...); UPDATE 3 of 3 times (...)"."""
    parts = []
    for kind in traffic.failing:
        error = kind.errors[0][0] if kind.errors else "an error"
        parts.append(f"{kind.words} {kind.failed} of {kind.queries} times ({error})")
    return "; ".join(parts)


class ObservedPreviousReleaseFailure(Rule):
    """The rehearsal saw the previous release's queries fail during or after the migration.

    **What it flags.** With ``--rehearse``, while each migration of the change
    runs on the scratch database (and right after it commits), other
    connections send the queries of the *previous* release: Django's ORM with
    the models of the state before the change, the code still serving
    requests during a rolling deploy. For every table the migration touches:
    a SELECT by primary key, a filtered SELECT, an INSERT naming only the
    columns that release knows, an UPDATE and a DELETE. This rule reports the
    queries PostgreSQL rejected, with its error: ``column "bio" does not
    exist`` after a column rename, ``relation "accounts_invitation" does not
    exist`` after a table rename or drop, ``null value in column
    "login_count" violates not-null constraint`` after a NOT NULL column
    without a database default. Queries that already failed before the
    migration started are not counted (the migration did not cause them).

    When a compatibility rule predicted the breakage (``rename-field``,
    ``remove-field``, ``not-null-without-db-default``, ``rename-model``,
    ``alter-db-table``...), that finding becomes ``observed`` and carries the
    measurement instead; this rule reports the failures no rule predicted:
    ``RunSQL``, custom operations, third-party fields.

    **Lock.** None in particular: the harm is every request of the old code
    that touches the table failing until the last old server is gone.

    **Fix.** Keep the previous release working until it is gone
    (expand/contract): add before you use, stop using before you remove. A
    database default for a new NOT NULL column, renames in Django's state
    only (``db_column``/``db_table`` pin the old names), drops in a release
    after the code stopped using the column or table.
    """

    id = "observed-previous-release-failure"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True

    @classmethod
    def for_table(cls, ctx: RuleContext, op: OperationRecord | None, traffic: Traffic) -> Finding:
        """The finding for the failed queries of ``traffic`` (no rule predicted them)."""
        who = f"{op.kind} (operations[{op.index}])" if op is not None else "the migration"
        message = (
            f"While and after {who} ran, the previous release's queries on {traffic.table} "
            f"failed: {failures_text(traffic)}. The rehearsal sent them through Django's ORM "
            f"with the models of the state before the change, at {traffic.rows:,} rows: "
            "until the last old server is gone, its requests that touch "
            f"{traffic.table} fail the same way. No rule predicted it; the rehearsal saw it."
        )
        fix = (
            "Keep the previous release working until it is gone (expand/contract): add "
            "before you use and stop using before you remove; give new NOT NULL columns a "
            "database default; rename in Django's state only (db_column, db_table); drop in a "
            "later release, once no server uses the column or table."
        )
        return ctx.finding(cls(), op, message, fix, table=traffic.table).replace(
            evidence=Evidence.OBSERVED, traffic=(traffic,)
        )

    @staticmethod
    def confirms(finding: Finding, traffic: Traffic) -> bool:
        """A compatibility finding the failed queries of ``traffic`` bear out."""
        return finding.category is Category.COMPATIBILITY and traffic.failed > 0
