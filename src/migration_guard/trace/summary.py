"""What the trace saw, summed up over a group of statements.

The tracer leaves one :class:`~migration_guard.collect.Observation` per
statement (locks newly taken, locks held, relation files changed, sequential
scans started). The judge and the report look at groups of statements: the
statements a finding is about, an operation's own statements, or the SQL an
operation deferred to the end of the migration. :func:`summarize` folds a group
into one :class:`Summary`, in structured values (never display strings).

Relations are named as at the start of the change (the trace knows them by
the snapshot taken after the base); the judge translates names where tables
were renamed since.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .. import pglocks
from ..findings import Blocks, Lock, Rewrite, Scan
from ..results import ObservedOperation

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, Observation, OperationRecord


@dataclasses.dataclass
class Summary:
    """Everything observed for a group of statements, on relations that existed before."""

    #: Modes the statements took (newly, not held before them).
    locks: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    #: Modes held while the statements ran, taken by them or earlier in the transaction.
    held: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    rewrites: set[str] = dataclasses.field(default_factory=set)
    scans: dict[str, int] = dataclasses.field(default_factory=dict)
    #: Relation rewritten or scanned -> the strongest mode held on it by the statement
    #: that did the work (a scan under SHARE UPDATE EXCLUSIVE blocks nothing).
    work_under: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Relation rewritten or scanned -> every (relation, mode) held while that work ran.
    held_during_work: dict[str, set[tuple[str, str]]] = dataclasses.field(default_factory=dict)
    duration_ms: float = 0.0
    sampled: bool = False
    observed: bool = False

    def strongest(self, relation: str | None = None, *, held: bool = False) -> str | None:
        """The strongest mode taken (or, with ``held``, also held) on ``relation``."""
        modes: set[str] = set()
        for source in (self.locks, self.held) if held else (self.locks,):
            for rel, rel_modes in source.items():
                if relation is None or rel == relation:
                    modes |= rel_modes
        return pglocks.strongest(modes)

    def table_work(self, relation: str) -> bool:
        """Work proportional to the table's size happened on it (rewrite or scan)."""
        return relation in self.rewrites or relation in self.scans

    def work_mode(self, relation: str) -> str | None:
        """The strongest lock held on ``relation`` while it was rewritten or scanned."""
        return self.work_under.get(relation)

    def lock_values(self, relation: str | None = None) -> tuple[Lock, ...]:
        """The strongest mode taken per relation, blocking ones first (all: None)."""
        out = []
        for rel in sorted(self.locks):
            if relation is not None and rel != relation:
                continue
            strongest = pglocks.strongest(self.locks[rel])
            if strongest:
                out.append(Lock(rel, strongest, pglocks.blocks(strongest)))
        out.sort(key=lambda lock: (-pglocks.strength(lock.mode), lock.relation))
        return tuple(out)

    def rewrites_of(self, table: str | None, tables: dict[str, str]) -> tuple[Rewrite, ...]:
        """Rewritten relations that are ``table`` or its indexes (all when table is None)."""
        out = []
        for rel in self.rewrites:
            owner = tables.get(rel, rel)
            if table is None or owner == table:
                out.append(Rewrite(rel, owner))
        return tuple(sorted(out, key=lambda r: (r.is_index, r.relation)))

    def scans_of(self, table: str | None) -> tuple[Scan, ...]:
        return tuple(
            Scan(rel, n) for rel, n in sorted(self.scans.items()) if table is None or rel == table
        )


def summarize(
    statements: Iterable[ExecutedStatement], extra: Sequence[Observation] = ()
) -> Summary:
    """Fold the observations of ``statements`` (and ``extra`` observations) into one."""
    chosen = list(statements)
    out = Summary(duration_ms=sum(s.duration_ms for s in chosen))
    observations = [s.observation for s in chosen if s.observation is not None]
    observations.extend(extra)
    for obs in observations:
        out.observed = True
        out.sampled = out.sampled or obs.method == "sampled"
        for relation, mode in obs.locks:
            out.locks.setdefault(relation, set()).add(mode)
        held = set(obs.held) | set(obs.locks)
        for relation, mode in held:
            out.held.setdefault(relation, set()).add(mode)
        worked = set(obs.rewrites) | {relation for relation, _ in obs.scans}
        for relation in worked:
            modes = {m for r, m in held if r == relation}
            if relation in out.work_under:
                modes.add(out.work_under[relation])
            strongest = pglocks.strongest(modes)
            if strongest:
                out.work_under[relation] = strongest
            out.held_during_work.setdefault(relation, set()).update(held)
        out.rewrites.update(obs.rewrites)
        for relation, count in obs.scans:
            out.scans[relation] = out.scans.get(relation, 0) + count
    return out


def own_statements(op: OperationRecord) -> list[ExecutedStatement]:
    """The statements an operation ran itself (not the SQL it deferred)."""
    from ..collect import DEFERRED

    return [s for s in op.statements if s.origin != DEFERRED]


def deferred_statements(op: OperationRecord) -> list[ExecutedStatement]:
    """The SQL an operation queued, which runs when every operation is done."""
    from ..collect import DEFERRED

    return [s for s in op.statements if s.origin == DEFERRED]


def of_operation(op: OperationRecord) -> Summary:
    """The operation's own statements, and its RunPython work as a whole."""
    out = summarize(own_statements(op), [op.observation] if op.observation else ())
    out.duration_ms = op.duration_ms
    return out


def observed_operations(record: MigrationRecord) -> tuple[ObservedOperation, ...]:
    """The trace of every operation that was observed, for the report.

    SQL an operation deferred is listed on its own, after the operations, where
    it runs.
    """
    out: list[ObservedOperation] = []
    deferred: list[ObservedOperation] = []
    for op in record.operations:
        later = deferred_statements(op)
        for phase, summary, at in (
            ("operation", of_operation(op), op),
            ("deferred", summarize(later), later[0] if later else op),
        ):
            if not summary.observed:
                continue
            # the trace knows tables by their names at the start of the change;
            # the report uses their names when the operation ran
            shown = {origin: name for name, origin in record.names_at(at).items()}
            entry = ObservedOperation(
                index=op.index,
                kind=op.kind,
                description=op.description,
                line=op.line,
                duration_ms=summary.duration_ms,
                # locks on tables; an index's lock follows its table's
                locks=tuple(
                    sorted(
                        (
                            dataclasses.replace(
                                lock, relation=shown.get(lock.relation, lock.relation)
                            )
                            for lock in summary.lock_values()
                            if record.relation_tables.get(lock.relation, lock.relation)
                            == lock.relation
                        ),
                        key=lambda lock: (-pglocks.strength(lock.mode), lock.relation),
                    )
                ),
                rewrites=tuple(
                    Rewrite(
                        shown.get(r.relation, r.relation) if not r.is_index else r.relation,
                        shown.get(r.table, r.table),
                    )
                    for r in summary.rewrites_of(None, record.relation_tables)
                ),
                scans=tuple(
                    sorted(
                        Scan(shown.get(s.relation, s.relation), s.count)
                        for s in summary.scans_of(None)
                    )
                ),
                method="sampled" if summary.sampled else "transaction",
                phase=phase,
            )
            (out if phase == "operation" else deferred).append(entry)
    return (*out, *deferred)


def blocking(mode: str | None) -> bool:
    return mode is not None and pglocks.blocks(mode) is not Blocks.NOTHING
