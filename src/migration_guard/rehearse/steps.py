"""For the planner: does the previous release get through every step of a plan?

``plan_zero_downtime --rehearse`` audits the migrations it wrote with the
rehearsal on (its verification's audit, :mod:`migration_guard.planner.verification`),
and :func:`previous_release_problems` says, one line each, every kind of query
of the previous release that failed (with PostgreSQL's error) and every table
where a query waited past the threshold. A plan passes only when there is none.

The migrations of one plan ship in one release, so the planner rehearses them as
one change. :func:`rehearse_steps` does the same for a sequence of releases (a
step: the migrations of one release), each audited after the steps before it, so
that the previous release of each step is the code of the step before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..findings import QUERY_WORDS

if TYPE_CHECKING:
    from ..conf import Config
    from ..discovery import Key
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


def rehearse_steps(
    steps: Sequence[Sequence[Key]],
    config: Config,
    *,
    database: str = "default",
    manage: str = "python manage.py",
) -> list[str]:
    """Audit each step (migrations deployed together) with ``--rehearse``, in order.

    Each step is its own change: every migration before it, earlier steps
    included, is its base, and its previous release is the state after the step
    before. Returns the problems of every step (empty: the previous release got
    through the whole plan), failed migrations included.
    """
    from ..discovery import Selection
    from ..engine import AuditRequest, run_audit

    rehearsing = config.replace(rehearse=True, trace=True)
    problems: list[str] = []
    for number, step in enumerate(steps, start=1):
        if not step:
            continue
        report = run_audit(
            AuditRequest(
                selection=Selection(keys=tuple(step)),
                config=rehearsing,
                database=database,
                manage=manage,
            )
        )
        prefix = f"step {number}: " if len(steps) > 1 else ""
        for migration in report.migrations:
            if migration.error:
                problems.append(
                    f"{prefix}{migration.app_label}.{migration.name} failed: {migration.error}"
                )
        problems.extend(prefix + line for line in previous_release_problems(report))
    return problems
