"""From the workload's samples to what the report says, per table and operation.

Per table the migration touches and per kind of query: how many were sent
while it ran and right after it, the longest time one took, how many took the
threshold or longer, and every failure with PostgreSQL's error. Queries that
already failed before the migration started are left out (and named in a
note): the migration did not cause them.

Each table's traffic is attributed to the operation that took the strongest
lock on it (what the trace saw first, statement by statement): a write waits
for the ``CREATE INDEX`` that holds SHARE, a SELECT naming a renamed column
fails after the operation that renamed it. With ``--stats-url``, the work that
operation did on the table (a scan, a rewrite, an index build) is scaled to
production's row count: linearly for scans and rewrites, ``n log n`` for
index builds. That is an estimate, labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import pglocks, sqlfacts
from ..findings import QUERY_KINDS, QueryTraffic, Traffic, TrafficEstimate
from .workload import BEFORE, Sample

if TYPE_CHECKING:
    from ..collect import MigrationRecord, OperationRecord

SCAN = "scan"
REWRITE = "rewrite"
INDEX = "index build"
LINEAR = "linear"
N_LOG_N = "n log n"


def baseline_failures(samples: Iterable[Sample]) -> dict[tuple[str, str], str]:
    """(table, kind) -> error, for queries that failed before the migration started."""
    out: dict[tuple[str, str], str] = {}
    for sample in samples:
        if sample.phase == BEFORE and sample.failed:
            out.setdefault((sample.table, sample.kind), sample.error or "")
    return out


def kind_traffic(kind: str, samples: Sequence[Sample], threshold: float) -> QueryTraffic:
    errors: dict[str, int] = {}
    for sample in samples:
        if sample.failed and sample.error:
            errors[sample.error] = errors.get(sample.error, 0) + 1
    return QueryTraffic(
        kind=kind,
        queries=len(samples),
        longest_wait_ms=max((s.elapsed for s in samples), default=0.0) * 1000,
        over_threshold=sum(1 for s in samples if s.elapsed >= threshold),
        failed=sum(1 for s in samples if s.failed),
        errors=tuple(sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))),
        gave_up=sum(1 for s in samples if s.gave_up),
    )


def lock_takers(record: MigrationRecord) -> dict[str, tuple[str, int]]:
    """Relation -> (strongest mode taken on it, index of the operation that took it first)."""
    stamped: list[tuple[int, Any, OperationRecord]] = []
    for op in record.operations:
        for stmt in op.statements:
            if stmt.observation is not None:
                stamped.append((stmt.seq, stmt.observation, op))
        if op.observation is not None:
            last = max((s.seq for s in op.statements), default=0)
            stamped.append((last, op.observation, op))
    out: dict[str, tuple[str, int]] = {}
    for _, observation, op in sorted(stamped, key=lambda item: item[0]):
        for relation, mode in observation.locks:
            known = out.get(relation)
            if known is None or pglocks.strength(mode) > pglocks.strength(known[0]):
                out[relation] = (mode, op.index)
    return out


def operation_for(record: MigrationRecord, table: str) -> OperationRecord | None:
    """The operation whose lock or change the traffic on ``table`` met."""
    taken = lock_takers(record).get(table)
    if taken is not None:
        return record.operations[taken[1]]
    for op in record.operations:
        names = {op.table, op.old_table}
        origins = {record.origin(name, op) for name in names if name}
        if table in names or table in origins:
            return op
    return None


def work_on(record: MigrationRecord, op: OperationRecord, table: str) -> tuple[str, float] | None:
    """What ``op`` did to the whole of ``table`` (index build, rewrite, scan) and for how
    many milliseconds; None when it only changed the catalog."""
    index_ms = rewrite_ms = scan_ms = 0.0
    for stmt in op.statements:
        facts = stmt.facts
        current = {name for name, origin in record.names_at(stmt).items() if origin == table}
        current.add(table)
        if _builds_index(facts, current):
            index_ms += stmt.duration_ms
            continue
        observation = stmt.observation
        if observation is None:
            continue
        if table in observation.rewrites:
            rewrite_ms += stmt.duration_ms
        elif any(rel == table for rel, _ in observation.scans):
            scan_ms += stmt.duration_ms
    for kind, ms in ((INDEX, index_ms), (REWRITE, rewrite_ms), (SCAN, scan_ms)):
        if ms > 0:
            return kind, ms
    return None


def _builds_index(facts: sqlfacts.SqlStatement, tables: set[str]) -> bool:
    return facts.table in tables and facts.builds_index


def estimate(
    work: tuple[str, float] | None, rehearsed_rows: int, production_rows: int | None
) -> TrafficEstimate | None:
    """The work's duration at production's size: linear, or ``n log n`` for index builds."""
    if work is None or production_rows is None or rehearsed_rows < 2:
        return None
    kind, ms = work
    if production_rows <= rehearsed_rows:
        factor = production_rows / rehearsed_rows
    elif kind == INDEX:
        factor = (production_rows * math.log(production_rows)) / (
            rehearsed_rows * math.log(rehearsed_rows)
        )
    else:
        factor = production_rows / rehearsed_rows
    return TrafficEstimate(
        production_rows=production_rows,
        rehearsed_rows=rehearsed_rows,
        seconds=ms / 1000 * factor,
        scaling=N_LOG_N if kind == INDEX else LINEAR,
        work=kind,
    )


def table_traffic(
    record: MigrationRecord,
    table: str,
    rows: int,
    samples: Sequence[Sample],
    *,
    threshold: float,
    excluded: dict[tuple[str, str], str],
    queued: bool,
    production_rows: int | None,
) -> Traffic:
    """The traffic on ``table`` while ``record``'s migration ran (and right after)."""
    counted = [s for s in samples if s.table == table and s.phase != BEFORE]
    kinds = []
    for kind in QUERY_KINDS:
        if (table, kind) in excluded:
            continue
        mine = [s for s in counted if s.kind == kind and (s.database or s.error is None)]
        if mine:
            kinds.append(kind_traffic(kind, mine, threshold))
    op = operation_for(record, table)
    work = work_on(record, op, table) if op is not None else None
    return Traffic(
        table=table,
        operation=op.ref if op is not None else None,
        rows=rows,
        threshold_ms=threshold * 1000,
        kinds=tuple(kinds),
        lock_queue=queued,
        estimate=None if queued else estimate(work, rows, production_rows),
    )
