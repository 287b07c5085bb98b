"""Turn what the trace saw into evidence, and into findings of its own.

Per operation, the observations of its statements are summed up: the locks it
took on relations that existed before the change, the relations it rewrote,
the tables it scanned, how long it ran. Then:

* a rule's prediction that the trace confirms becomes ``evidence: observed``
  and carries the observed locks, rewrites and scans;
* a prediction the trace contradicts is downgraded one severity step and says
  what was seen instead;
* blocking the trace saw that no rule predicted becomes a finding of its own
  (custom operations, RunSQL, RunPython DDL, third-party fields).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import pglocks as lockmodes
from ..findings import Blocks, Category, Evidence, Finding, Lock, Severity
from ..results import ObservedOperation
from ..rules import registry

if TYPE_CHECKING:
    from ..collect import MigrationRecord, OperationRecord
    from ..rules.base import RuleContext

_DOWNGRADE = {Severity.ERROR: Severity.WARNING, Severity.WARNING: Severity.INFO}


@dataclasses.dataclass
class OperationTrace:
    """Everything observed for one operation, on relations that existed before."""

    locks: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    #: Modes held while the operation ran, taken by it or earlier in the transaction.
    held: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    rewrites: set[str] = dataclasses.field(default_factory=set)
    scans: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Table rewritten or scanned -> the strongest mode held on it by the statement
    #: that did the work (a scan under SHARE UPDATE EXCLUSIVE blocks nothing).
    work_under: dict[str, str] = dataclasses.field(default_factory=dict)
    duration_ms: float = 0.0
    sampled: bool = False
    observed: bool = False

    def add_lock(self, relation: str, mode: str) -> None:
        self.locks.setdefault(relation, set()).add(mode)

    def strongest(self, relation: str | None = None, *, held: bool = False) -> str | None:
        """The strongest mode taken (or, with ``held``, also held) on ``relation``."""
        modes: set[str] = set()
        for source in (self.locks, self.held) if held else (self.locks,):
            for rel, rel_modes in source.items():
                if relation is None or rel == relation:
                    modes |= rel_modes
        return lockmodes.strongest(modes)

    def _shown_mode(self, relation: str, expected: str | None) -> str | None:
        own, held = self.strongest(relation), self.strongest(relation, held=True)
        if not own:
            return held
        if (
            expected
            and held
            and lockmodes.strength(own) < lockmodes.strength(expected) <= lockmodes.strength(held)
        ):
            return held  # the finding is about the lock held across these statements
        return own

    def lock_for(self, relation: str, expected: str | None = None) -> Lock | None:
        """The lock the statements took on ``relation``, else the one they ran under.

        When the finding expects a lock that only an earlier statement of the
        transaction took (a lock held across the operation), that one is shown.
        """
        mode = self._shown_mode(relation, expected)
        return Lock(relation, mode, lockmodes.blocks(mode)) if mode else None

    def held_note(self, relation: str, expected: str | None = None) -> str | None:
        """A stronger lock taken earlier in the transaction that was held meanwhile."""
        shown, held = self._shown_mode(relation, expected), self.strongest(relation, held=True)
        if not shown or not held or lockmodes.strength(held) <= lockmodes.strength(shown):
            return None
        return (
            f"trace: {relation} was already under {lockmodes.describe_blocking(held)}, taken "
            "earlier in the same transaction, while this ran"
        )

    def lock_values(self, relation: str | None = None) -> tuple[Lock, ...]:
        """The strongest mode per relation, blocking ones first (all relations: None)."""
        out = []
        for rel in sorted(self.locks):
            if relation is not None and rel != relation:
                continue
            mode = lockmodes.strongest(self.locks[rel])
            if mode:
                out.append(Lock(rel, mode, lockmodes.blocks(mode)))
        out.sort(key=lambda lock: (-lockmodes.strength(lock.mode), lock.relation))
        return tuple(out)

    def rewrites_of(self, table: str | None, tables: dict[str, str]) -> tuple[str, ...]:
        """Rewritten relations that are ``table`` or its indexes (all when table is None)."""
        return tuple(
            sorted(
                (rel if rel == table or table is None else f"{rel} (index)")
                for rel in self.rewrites
                if table is None or rel == table or tables.get(rel) == table
            )
        )

    def scans_of(self, table: str | None) -> tuple[str, ...]:
        return tuple(
            f"{rel} ({n} sequential scan{'s' if n > 1 else ''})"
            for rel, n in sorted(self.scans.items())
            if table is None or rel == table
        )

    def table_work(self, relation: str) -> bool:
        """Work proportional to the table's size happened on it (rewrite or scan)."""
        return relation in self.rewrites or relation in self.scans

    def work_mode(self, relation: str) -> str | None:
        """The strongest lock held on ``relation`` while it was rewritten or scanned."""
        return self.work_under.get(relation)


def observed_operations(record: MigrationRecord) -> tuple[ObservedOperation, ...]:
    """The trace of every operation that was observed, for the report."""
    out = []
    for op in record.operations:
        trace = trace_of(op)
        if not trace.observed:
            continue
        out.append(
            ObservedOperation(
                index=op.index,
                kind=op.kind,
                description=op.description,
                line=op.line,
                duration_ms=op.duration_ms,
                # locks on tables; an index's lock follows its table's
                locks=tuple(
                    lock
                    for lock in trace.lock_values()
                    if record.relation_tables.get(lock.relation, lock.relation) == lock.relation
                ),
                rewrites=trace.rewrites_of(None, record.relation_tables),
                scans=trace.scans_of(None),
                method="sampled" if trace.sampled else "transaction",
            )
        )
    return tuple(out)


def trace_of(op: OperationRecord, statements: list[Any] | None = None) -> OperationTrace:
    """What was observed for the operation, or for some of its statements only."""
    chosen = op.statements if statements is None else statements
    duration = op.duration_ms if statements is None else sum(s.duration_ms for s in statements)
    out = OperationTrace(duration_ms=duration)
    observations = [s.observation for s in chosen if s.observation is not None]
    if op.observation is not None and statements is None:
        observations.append(op.observation)
    for obs in observations:
        out.observed = True
        out.sampled = out.sampled or obs.method == "sampled"
        for relation, mode in obs.locks:
            out.add_lock(relation, mode)
        for relation, mode in obs.held:
            out.held.setdefault(relation, set()).add(mode)
        worked = set(obs.rewrites) | {relation for relation, _ in obs.scans}
        for relation in worked:
            modes = {m for r, m in (*obs.held, *obs.locks) if r == relation}
            mode = lockmodes.strongest(
                modes | ({out.work_under[relation]} if relation in out.work_under else set())
            )
            if mode:
                out.work_under[relation] = mode
        out.rewrites.update(obs.rewrites)
        for relation, count in obs.scans:
            out.scans[relation] = out.scans.get(relation, 0) + count
    return out


def _confirms(finding: Finding, trace: OperationTrace, prediction: object) -> tuple[bool, str]:
    table = finding.table
    lock = getattr(prediction, "lock", None)
    # a rule may say, per finding, which mode this statement asks for on its table
    own = [lk.mode for lk in finding.locks if lk.relation == table]
    if lock and own:
        lock = own[0]
    seen = trace.strongest(table, held=True)
    problems = []
    if lock and (seen is None or lockmodes.strength(seen) < lockmodes.strength(lock)):
        problems.append(
            f"expected {lockmodes.sql_name(lock)} on {table or 'the table'}, observed "
            + (lockmodes.sql_name(seen) if seen else "no lock")
        )
    if getattr(prediction, "rewrite", False) and table not in trace.rewrites:
        problems.append(f"expected a rewrite of {table}, none observed")
    if getattr(prediction, "scan", False) and table and not trace.table_work(table):
        problems.append(f"expected a full scan of {table}, none observed")
    work = trace.work_mode(table) if table else None
    if (
        lock
        and work
        and (getattr(prediction, "rewrite", False) or getattr(prediction, "scan", False))
        and lockmodes.strength(work) < lockmodes.strength(lock)
    ):
        problems.append(
            f"the table work on {table} ran under {lockmodes.sql_name(work)}, "
            f"not {lockmodes.sql_name(lock)}"
        )
    return (not problems, "; ".join(problems))


def _blocking_relations(trace: OperationTrace, record: MigrationRecord) -> list[tuple[str, str]]:
    """(relation, strongest mode) for existing tables whose lock blocks reads or writes."""
    out = []
    for relation in sorted(trace.locks):
        if not record.is_existing(relation):
            continue  # an index, or a table created by the change
        mode = trace.strongest(relation)
        if mode and lockmodes.blocks(mode) is not Blocks.NOTHING:
            out.append((relation, mode))
    return out


def _statements_of(finding: Finding, op: OperationRecord) -> list[Any] | None:
    """The observed statements the finding is about (None: the whole operation)."""
    if not finding.sql:
        return None
    wanted = {text.strip().rstrip(";") for text in finding.sql}
    chosen = [s for s in op.statements if s.observation is not None and s.sql.rstrip(";") in wanted]
    return chosen or None


def _relations_of(finding: Finding) -> list[str]:
    """The table of the finding, then every other relation its predicted locks name."""
    out = [finding.table] if finding.table else []
    out += [lock.relation for lock in finding.locks if lock.relation not in out]
    return out


def merge(record: MigrationRecord, findings: list[Finding], ctx: RuleContext) -> list[Finding]:
    rules = registry()
    ops = {op.index: op for op in record.operations}
    traces = {op.index: trace_of(op) for op in record.operations}
    out: list[Finding] = []
    explained: dict[int, set[str]] = {}
    for finding in findings:
        index = finding.operation.index if finding.operation else -1
        rule = rules.get(finding.rule)
        prediction = getattr(rule, "predicts", None)
        if index not in ops or prediction is None or not traces[index].observed:
            out.append(finding)
            continue
        # the trace knows relations by their names at the start of the change
        canon = record.aliases.get
        shown = {canon(rel, rel): rel for rel in _relations_of(finding)}
        lookup = finding.replace(
            table=canon(finding.table, finding.table) if finding.table else None,
            locks=tuple(
                dataclasses.replace(lock, relation=canon(lock.relation, lock.relation))
                for lock in finding.locks
            ),
        )
        relations = _relations_of(lookup)
        explained.setdefault(index, set()).update(relations)
        trace = trace_of(ops[index], _statements_of(finding, ops[index]))
        if not trace.observed:
            trace = traces[index]
        ok, why = _confirms(lookup, trace, prediction)
        expected = {lock.relation: lock.mode for lock in lookup.locks}
        observed_locks = tuple(
            dataclasses.replace(lock, relation=shown.get(lock.relation, lock.relation))
            for lock in (trace.lock_for(rel, expected.get(rel)) for rel in relations)
            if lock is not None
        )
        held_notes = tuple(
            n for n in (trace.held_note(rel, expected.get(rel)) for rel in relations) if n
        )
        evidence = dict(
            locks=observed_locks or finding.locks,
            rewrites=tuple(
                shown.get(rel, rel)
                for rel in trace.rewrites_of(lookup.table, record.relation_tables)
            ),
            scans=tuple(
                scan.replace(lookup.table, finding.table, 1)
                if lookup.table and finding.table
                else scan
                for scan in trace.scans_of(lookup.table)
            ),
            duration_ms=round(trace.duration_ms, 2),
        )
        if held_notes:
            finding = finding.replace(notes=(*finding.notes, *held_notes))
        if ok:
            out.append(finding.replace(evidence=Evidence.OBSERVED, **evidence))
        else:
            out.append(
                finding.replace(
                    evidence=Evidence.CONTRADICTED,
                    severity=_DOWNGRADE.get(finding.severity, finding.severity),
                    notes=(*finding.notes, f"trace: {why}; severity lowered"),
                    **evidence,
                )
            )
    for op in record.operations:
        out.extend(_unpredicted(op, traces[op.index], explained.get(op.index, set()), out, ctx))
    return out


def _unpredicted(
    op: OperationRecord,
    trace: OperationTrace,
    explained: set[str],
    findings: Iterable[Finding],
    ctx: RuleContext,
) -> Iterable[Finding]:
    from ..rules.observed_blocking_lock import ObservedBlockingLock, ObservedTableWorkUnderLock

    record = ctx.migration
    brief: list[tuple[str, str]] = []
    for relation, mode in _blocking_relations(trace, record):
        if relation in explained:
            continue
        work_mode = trace.work_mode(relation)
        if work_mode is None or lockmodes.blocks(work_mode) is Blocks.NOTHING:
            brief.append((relation, mode))
            continue
        blocked = lockmodes.blocks(work_mode).value
        work = "rewrote" if relation in trace.rewrites else "scanned"
        yield ctx.finding(
            ObservedTableWorkUnderLock(),
            op,
            f"{op.kind} {work} the whole of {relation} while holding "
            f"{lockmodes.sql_name(work_mode)} on it: {blocked} wait for as long as that takes "
            "on a big table. No rule predicted this; the trace saw it.",
            "Split the work so the table is not rewritten or scanned under this lock "
            "(NOT VALID constraints, CONCURRENTLY indexes, expand/contract), or run it "
            "in a maintenance window.",
            table=relation,
        ).replace(
            evidence=Evidence.OBSERVED,
            locks=trace.lock_values(relation),
            rewrites=trace.rewrites_of(relation, record.relation_tables),
            scans=trace.scans_of(relation),
            duration_ms=round(trace.duration_ms, 2),
        )
    if (
        brief
        and not ctx.lock_timeout_configured
        and not _lock_timeout_reported(findings)
        and not _sets_own_lock_timeout(record)
    ):
        what = ", ".join(
            f"{lockmodes.sql_name(mode)} on {relation} (blocks {lockmodes.blocks(mode).value})"
            for relation, mode in brief
        )
        yield ctx.finding(
            ObservedBlockingLock(),
            op,
            f"{op.kind} took {what}. It is brief, but the request waits behind any long "
            "transaction on the table, and every query on the table queues behind it.",
            "Set lock_timeout for migrations (MIGRATION_GUARD = {'lock_timeout': '5s'} or "
            "OPTIONS['options'] = '-c lock_timeout=5s') and retry the deploy on timeout.",
            table=brief[0][0],
        ).replace(
            evidence=Evidence.OBSERVED,
            locks=tuple(lock for rel, _ in brief for lock in trace.lock_values(rel)),
            duration_ms=round(trace.duration_ms, 2),
        )


def _sets_own_lock_timeout(record: MigrationRecord) -> bool:
    """The migration sets lock_timeout itself (SET lock_timeout, set_config(...))."""
    from ..rules.lock_timeout_missing import sets_lock_timeout

    return any(
        sets_lock_timeout(stmt, record.atomic) for op in record.operations for stmt in op.statements
    )


def _lock_timeout_reported(findings: Iterable[Finding]) -> bool:
    return any(f.rule == "lock-timeout-missing" for f in findings)


def failure_finding(record: MigrationRecord, ctx: RuleContext) -> Finding | None:
    """The correctness finding for a migration that failed on Postgres."""
    if record.error is None:
        return None
    from ..rules.migration_failed import MigrationFailed

    op = record.operations[record.error_op] if record.error_op is not None else None
    where = f" in {op.kind} (operations[{op.index}])" if op is not None else ""
    rule = MigrationFailed()
    return ctx.finding(
        rule,
        op,
        f"the migration failed on PostgreSQL{where}; nothing of it stays applied"
        + ("" if record.atomic else " except the statements before the failure (atomic = False)")
        + f":\n{record.error}",
        "Fix the operation so that it applies: `python manage.py migrate` would fail the same "
        "way in production.",
        table=op.table if op is not None else None,
        severity=Severity.ERROR,
    ).replace(evidence=Evidence.OBSERVED, category=Category.CORRECTNESS)
