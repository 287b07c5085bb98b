"""``--rehearse`` measurements in words, shared by the text, Markdown and SARIF reports.

Plain text only: each renderer escapes it for where it lands (table names and
PostgreSQL's errors come from the merge request).
"""

from __future__ import annotations

from ..findings import QueryTraffic, Traffic


def seconds(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def threshold(traffic: Traffic) -> str:
    return f"{traffic.threshold_ms / 1000:g} s"


def waits(traffic: Traffic) -> str:
    """ "previous release on shop_order (10,000 rows), 25 queries: writes waited up to ..."."""
    reads = [k for k in traffic.kinds if k.reads]
    writes = [k for k in traffic.kinds if not k.reads]
    parts = []
    if writes:
        parts.append(f"writes waited up to {seconds(traffic.longest(reads=False))}")
    if reads:
        parts.append(f"reads up to {seconds(traffic.longest(reads=True))}")
    over = traffic.over_threshold
    parts.append(f"{over if over else 'none'} over {threshold(traffic)}")
    where = f"previous release on {traffic.table} ({traffic.rows:,} rows)"
    if traffic.operation is not None and traffic.operation.index >= 0:
        where += f" during operations[{traffic.operation.index}] {traffic.operation.kind}"
    text = f"{where}, {traffic.queries} queries: " + ", ".join(parts)
    if traffic.lock_queue:
        text += "; the lock queue formed (the migration waited behind a long transaction)"
    gave_up = sum(k.gave_up for k in traffic.kinds)
    if gave_up:
        text += f"; {gave_up} gave up waiting"
    if traffic.estimate is not None:
        e = traffic.estimate
        text += (
            f"; at production's {e.production_rows:,} rows the {e.work} would take about "
            f"{e.seconds:.1f} s (estimate, {e.scaling})"
        )
    return text


def failures(traffic: Traffic) -> list[str]:
    """One line per failing kind: "INSERT 12 of 12: ERROR: null value in column ..."."""
    return [f"{k.words} {k.failed} of {k.queries}: {first_error(k)}" for k in traffic.failing]


def first_error(kind: QueryTraffic) -> str:
    text = kind.errors[0][0] if kind.errors else "error"
    if len(kind.errors) > 1:
        text += f" (and {len(kind.errors) - 1} other error(s))"
    return text


def failed_cell(traffic: Traffic) -> str:
    """ "8 of 9: column accounts_profile.bio does not exist" (the first failing kind's error)."""
    failing = traffic.failing
    if not failing:
        return "none"
    return f"{traffic.failed} of {traffic.queries}: {first_error(failing[0])}"
