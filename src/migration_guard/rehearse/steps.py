"""For the planner: does the previous release get through every step of a plan?

``plan_zero_downtime --rehearse`` audits the migrations it wrote with the
rehearsal on (its verification's audit, :mod:`migration_guard.planner.verification`),
and :func:`previous_release_problems` says, one line each, every kind of query
of the previous release that failed (with PostgreSQL's error) and every table
where a query waited past the threshold. A plan passes only when there is none.

The migrations of one plan ship in one release, so the planner rehearses them as
one change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..findings import QUERY_WORDS

if TYPE_CHECKING:
    from ..results import AuditReport


#: The rules whose findings are the rehearsal's measurements (what
#: :func:`previous_release_problems` says query by query).
TRAFFIC_RULES = frozenset({"observed-previous-release-failure", "observed-blocked-traffic"})


def longest_wait_ms(report: AuditReport) -> float:
    """The longest time a query of the previous release took in a rehearsed audit."""
    return max(
        (
            traffic.longest_wait_ms
            for migration in report.migrations
            if migration.rehearsal is not None
            for traffic in migration.rehearsal.tables
        ),
        default=0.0,
    )


def previous_release_problems(report: AuditReport) -> list[str]:
    """Failed queries and waits past the threshold in a rehearsed audit, one line each."""
    out: list[str] = []
    for migration in report.migrations:
        if migration.rehearsal is None:
            continue
        where = f"{migration.app_label}.{migration.name}"
        for traffic in migration.rehearsal.tables:
            for kind in traffic.failing:
                error = kind.errors[0][0] if kind.errors else "an error"
                out.append(
                    f"{where}: the previous release's {QUERY_WORDS[kind.kind]} on "
                    f"{traffic.table} failed {kind.failed} of {kind.queries} times: {error}"
                )
            if traffic.over_threshold:
                out.append(
                    f"{where}: {traffic.over_threshold} of the previous release's "
                    f"{traffic.queries} queries on {traffic.table} waited "
                    f"{traffic.threshold_ms / 1000:g} s or longer (up to "
                    f"{traffic.longest_wait_ms / 1000:.1f} s)"
                    + ("; the lock queue formed" if traffic.lock_queue else "")
                )
    return out
