"""Judging: the rules' predictions and the trace's observations become findings.

One stage, per migration of the change:

1. every rule looks at the migration (``check_operation``/``check_migration``)
   and predicts; a rule that is only about busy tables stays quiet about a
   table that, when the statement ran, was not one that existed before the
   change (created by it, or dropped and created again: see
   :mod:`migration_guard.lineage`);
2. a migration that failed on PostgreSQL gets its ``migration-failed`` finding;
3. with the trace, each prediction is checked against what PostgreSQL did
   while *its own statements* ran (deferred SQL where it ran, at the end of the
   migration): confirmed, it becomes ``observed`` and carries the observed
   locks, rewrites and scans, including blocking locks held meanwhile on other
   tables and who took them; contradicted, it is downgraded and says why;
4. blocking the trace saw that no rule predicted becomes a finding of its own
   (whole-table work under a blocking lock); brief blocking locks feed the one
   ``lock-timeout-missing`` finding of the run;
5. with ``--rehearse``, what the previous release's traffic suffered (see
   :mod:`migration_guard.rehearse`) joins the findings about its tables: failed
   queries make a compatibility prediction ``observed``, and failures or waits
   past the threshold that no rule predicted become findings of their own;
6. configuration re-grades findings, ignores drop them, and ignores that
   matched nothing are reported.

After the last migration, :meth:`Judge.finish` turns the per-migration
``lock-timeout-missing`` candidates into one finding for the run: it is a
setting of the project, said once, where it is configured.

Messages belong to the rule modules; this module decides, it does not word.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import pglocks
from .findings import Evidence, Finding, Lock, Severity
from .rules import registry
from .rules.base import Rule, RuleContext
from .trace import summary as traced

if TYPE_CHECKING:
    from .collect import ExecutedStatement, MigrationRecord, OperationRecord
    from .conf import Config
    from .pgversion import PgFacts
    from .results import MigrationRehearsal, MigrationResult

#: What a lock request is, when only the trace shows it.
SEEN = "its SQL does not name this table; the trace saw the lock"
_DOWNGRADE = {Severity.ERROR: Severity.WARNING, Severity.WARNING: Severity.INFO}
OPERATION = "operation"
DEFERRED = "deferred"


def _norm(sql: str) -> str:
    return " ".join(sql.split()).rstrip(";").strip()


def statements_of(finding: Finding, op: OperationRecord) -> list[ExecutedStatement]:
    """The operation's statements the finding is about (by its SQL), in execution order."""
    if not finding.sql:
        return []
    wanted = {_norm(text) for text in finding.sql}
    return sorted((s for s in op.statements if _norm(s.sql) in wanted), key=lambda s: s.seq)


@dataclasses.dataclass
class _Migration:
    """What one migration's judging needs besides the record."""

    record: MigrationRecord
    ctx: RuleContext
    #: (relation, mode) -> who took it first in this migration ("operations[0] AlterField").
    taken_by: dict[tuple[str, str], str]


class Judge:
    """Decides the findings of every migration of one audit run."""

    def __init__(
        self,
        config: Config,
        pg: PgFacts,
        *,
        traced: bool,
        lock_timeout_configured: bool,
        manage: str = "python manage.py",
        database: str = "default",
        rules: Iterable[Rule] | None = None,
        lock_timeout_where: str = "settings",
    ) -> None:
        from . import rules as rules_pkg

        self.config = config
        self.pg = pg
        self.traced = traced
        self.lock_timeout_configured = lock_timeout_configured
        self.lock_timeout_where = lock_timeout_where
        self.manage = manage
        self.database = database
        self.rules = list(
            rules
            if rules is not None
            else (
                r
                for r in rules_pkg.all_rules()
                if config.severity_for(r.id, r.severity) is not None
            )
        )

    # -- one migration ---------------------------------------------------------------
    def migration(
        self, record: MigrationRecord, rehearsal: MigrationRehearsal | None = None
    ) -> list[Finding]:
        ctx = RuleContext(
            config=self.config,
            pg=self.pg,
            migration=record,
            lock_timeout_configured=self.lock_timeout_configured,
            manage=self.manage,
            database=self.database,
        )
        findings: list[Finding] = []
        for rule in self.rules:
            for op in record.operations:
                if not op.routed:
                    continue  # the routers skip it on this database: it does nothing here
                ctx.current = op
                findings.extend(self._kept(rule, rule.check_operation(op, ctx), record))
            ctx.current = None
            findings.extend(self._kept(rule, rule.check_migration(record, ctx), record))
        from .rules.migration_failed import MigrationFailed

        failure = MigrationFailed.for_record(record, ctx)
        if failure is not None:
            findings.append(failure)
        if self.traced:
            state = _Migration(record, ctx, _first_takers(record))
            findings = self._evidence(state, findings)
            if not self.lock_timeout_configured:
                findings = self._observed_requests(state, findings)
        if rehearsal is not None:
            findings = self._rehearsed(record, ctx, findings, rehearsal)
        findings = self._settings(findings, record, ctx)
        findings.sort(key=Finding.sort_key)
        return findings

    def _kept(self, rule: Rule, produced: Any, record: MigrationRecord) -> Iterator[Finding]:
        """Findings of ``rule``, without those about tables that were not busy tables then."""
        for finding in produced or ():
            if rule.only_existing_tables and finding.table:
                at = _position(finding, record)
                after = getattr(at, "existing_after", None) or {}
                # a rename's finding may name the table by its new name
                if not record.is_existing(finding.table, at) and finding.table not in after:
                    continue
            yield finding

    # -- predictions against observations ------------------------------------------
    def _evidence(self, state: _Migration, findings: list[Finding]) -> list[Finding]:
        record = state.record
        rules = registry()
        ops = {op.index: op for op in record.operations}
        out: list[Finding] = []
        explained: set[tuple[int, str, str]] = set()
        for finding in findings:
            index = finding.operation.index if finding.operation else -1
            rule = rules.get(finding.rule)
            prediction = getattr(rule, "predicts", None)
            op = ops.get(index)
            if op is None or prediction is None:
                out.append(finding)
                continue
            own = [s for s in statements_of(finding, op) if s.observation is not None]
            summary = (
                traced.summarize(own)
                if own
                else traced.summarize(op.statements, [op.observation] if op.observation else ())
            )
            if not summary.observed:
                out.append(finding)
                continue
            at: Any = own[0] if own else op
            phase = DEFERRED if own and all(s.origin == "deferred" for s in own) else OPERATION
            judged = _Judged(record, at, finding, summary)
            for relation in judged.relations if prediction.explains_work else ():
                explained.add((index, phase, relation))
                if not own:
                    explained.add((index, DEFERRED, relation))
            out.append(judged.decide(prediction, state.taken_by))
        for op in record.operations:
            out.extend(self._unpredicted(state, op, explained))
        return out

    def _unpredicted(
        self, state: _Migration, op: OperationRecord, explained: set[tuple[int, str, str]]
    ) -> Iterator[Finding]:
        """Whole-table work under a blocking lock that no rule predicted, where it ran."""
        from .rules.observed_blocking_lock import ObservedTableWorkUnderLock

        record = state.record
        groups: tuple[tuple[str, list[ExecutedStatement], list[Any]], ...] = (
            (OPERATION, traced.own_statements(op), [op.observation] if op.observation else []),
            (DEFERRED, traced.deferred_statements(op), []),
        )
        for phase, stmts, extra in groups:
            summary = traced.summarize(stmts, extra)
            if not summary.observed:
                continue
            at: Any = stmts[0] if stmts else op
            alive = _alive(record, at)
            for relation in sorted(set(summary.rewrites) | set(summary.scans)):
                mode = summary.work_mode(relation)
                if relation not in alive or not traced.blocking(mode):
                    continue
                if (op.index, phase, relation) in explained:
                    continue
                assert mode is not None
                also = _held_elsewhere(summary, relation, alive, state.taken_by)
                yield ObservedTableWorkUnderLock.for_work(
                    state.ctx,
                    op,
                    relation=alive[relation],
                    mode=mode,
                    rewrote=relation in summary.rewrites,
                    deferred=phase == DEFERRED,
                    also=_renamed(also, alive),
                ).replace(
                    evidence=Evidence.OBSERVED,
                    locks=(_work_lock(summary, relation, mode, alive, state.taken_by),),
                    held=_renamed(also, alive),
                    rewrites=tuple(
                        dataclasses.replace(r, relation=alive.get(r.relation, r.relation))
                        for r in summary.rewrites_of(relation, record.relation_tables)
                    ),
                    scans=tuple(
                        dataclasses.replace(s, relation=alive[relation])
                        for s in summary.scans_of(relation)
                    ),
                    duration_ms=round(summary.duration_ms, 2),
                )

    def _observed_requests(self, state: _Migration, findings: list[Finding]) -> list[Finding]:
        """Blocking lock requests the trace saw and the SQL does not show (a foreign key's
        DROP CONSTRAINT locks the referenced table) join ``lock-timeout-missing``."""
        from .rules.lock_timeout_missing import LockTimeoutMissing, Request, requested_locks

        record = state.record
        predicted = requested_locks(record)
        if predicted is None:
            return findings  # the migration sets its own lock_timeout first
        known = {(r.table, r.mode) for r in predicted}
        seen: list[Request] = []
        for op in record.operations:
            stamped: list[tuple[int, Any, Any]] = [
                (s.seq, s, s.observation) for s in op.statements if s.observation
            ]
            if op.observation is not None:
                stamped.append((max((s.seq for s in op.statements), default=0), op, op.observation))
            for seq, at, obs in sorted(stamped, key=lambda item: item[0]):
                alive = _alive(record, at)
                for relation, mode in obs.locks:
                    if relation not in alive or not traced.blocking(mode):
                        continue
                    table = alive[relation]
                    if any(
                        t == table and pglocks.strength(m) >= pglocks.strength(mode)
                        for t, m in known
                    ):
                        continue
                    known.add((table, mode))
                    seen.append(Request(table, mode, SEEN, op.index, None, seq))
        if not seen:
            return findings
        requests = sorted([*predicted, *seen], key=lambda r: (r.seq, r in seen))
        finding = LockTimeoutMissing.for_locks(state.ctx, record, requests)
        if any(r.seq == requests[0].seq for r in seen):
            finding = finding.replace(evidence=Evidence.OBSERVED)
        return [f for f in findings if f.rule != LockTimeoutMissing.id] + [finding]

    # -- the previous release's traffic (--rehearse) --------------------------------------
    def _rehearsed(
        self,
        record: MigrationRecord,
        ctx: RuleContext,
        findings: list[Finding],
        rehearsal: MigrationRehearsal,
    ) -> list[Finding]:
        """Measurements join the findings about their table; what no rule predicted stands
        alone: failed queries, and waits past the threshold."""
        from .rules.lock_timeout_missing import LockTimeoutMissing
        from .rules.observed_blocked_traffic import ObservedBlockedTraffic as Blocked
        from .rules.observed_previous_release_failure import (
            ObservedPreviousReleaseFailure as Failed,
        )

        out = list(findings)
        for traffic in rehearsal.tables:
            related = [
                i
                for i, finding in enumerate(out)
                if finding.rule != LockTimeoutMissing.id
                and traffic.table in _tables_of(finding, record)
            ]
            for i in related:
                finding = out[i]
                confirmed = Failed.confirms(finding, traffic)
                out[i] = finding.replace(
                    traffic=(*finding.traffic, traffic),
                    evidence=Evidence.OBSERVED if confirmed else finding.evidence,
                )
            index = traffic.operation.index if traffic.operation is not None else -1
            op = record.operations[index] if 0 <= index < len(record.operations) else None
            if traffic.failed and not any(Failed.confirms(out[i], traffic) for i in related):
                out.append(Failed.for_table(ctx, op, traffic))
            if traffic.over_threshold and not any(Blocked.confirms(out[i]) for i in related):
                out.append(Blocked.for_table(ctx, op, traffic))
        return out

    # -- configuration ---------------------------------------------------------------
    def _settings(
        self, findings: list[Finding], record: MigrationRecord, ctx: RuleContext
    ) -> list[Finding]:
        """Re-grade by configuration, drop what is ignored, report ignores that match nothing."""
        from .rules.unused_ignore import unused_ignores

        config = ctx.config
        used: set[tuple[int | None, str]] = set()
        kept: list[Finding] = []
        for finding in findings:
            index = finding.operation.index if finding.operation else None
            op = (
                record.operations[index]
                if index is not None and 0 <= index < len(record.operations)
                else None
            )
            if finding.rule in record.migration_ignores:
                used.add((None, finding.rule))
                continue
            if op is not None and finding.rule in op.ignored_rules():
                used.add((index, finding.rule))
                continue
            severity = config.severity_for(finding.rule, finding.severity)
            if severity is None:
                continue
            kept.append(
                finding if severity is finding.severity else finding.replace(severity=severity)
            )
        kept.extend(unused_ignores(record, used, ctx))
        return kept

    # -- the run -----------------------------------------------------------------------
    def finish(self, results: list[MigrationResult]) -> list[MigrationResult]:
        """Say once per run what is a project setting: ``lock-timeout-missing``."""
        from .rules.lock_timeout_missing import LockTimeoutMissing

        return LockTimeoutMissing.once_per_run(results, self.lock_timeout_where)


class _Judged:
    """One prediction, confronted with what its statements did."""

    def __init__(self, record: MigrationRecord, at: Any, finding: Finding, summary: Any) -> None:
        self.record = record
        self.finding = finding
        self.summary = summary
        self.alive = _alive(record, at)
        origin = record.origin
        # the trace knows relations by their names at the start of the change
        self.shown: dict[str, str] = {}
        for rel in _relations_of(finding):
            self.shown[origin(rel, at) or rel] = rel
        self.lookup = finding.replace(
            table=(origin(finding.table, at) or finding.table) if finding.table else None,
            locks=tuple(
                dataclasses.replace(lock, relation=origin(lock.relation, at) or lock.relation)
                for lock in finding.locks
            ),
        )
        self.relations = _relations_of(self.lookup)

    def decide(self, prediction: Any, taken_by: dict[tuple[str, str], str]) -> Finding:
        finding, lookup, summary = self.finding, self.lookup, self.summary
        ok, why = _confirms(lookup, summary, prediction)
        expected = {lock.relation: lock.mode for lock in lookup.locks}
        table = lookup.table
        own_locks = []
        notes: list[str] = []
        for rel in self.relations:
            mode = _shown_mode(summary, rel, expected.get(rel))
            if mode:
                # the line shows a lock these statements did not ask for: say who did
                asked = summary.strongest(rel) or expected.get(rel)
                earlier = asked is None or pglocks.strength(asked) < pglocks.strength(mode)
                own_locks.append(
                    Lock(
                        self.shown.get(rel, rel),
                        mode,
                        pglocks.blocks(mode),
                        taken_by.get((rel, mode)) if earlier else None,
                    )
                )
            note = _held_note(summary, rel, mode, taken_by, self.shown.get(rel, rel))
            note = note or _stronger_note(rel, mode, expected.get(rel), self.shown.get(rel, rel))
            if note:
                notes.append(note)
        works = bool(table) and summary.table_work(table)
        also: tuple[Lock, ...] = ()
        if works and table:
            also = _renamed(
                (
                    lock
                    for lock in _held_elsewhere(summary, table, self.alive, taken_by)
                    if lock.relation not in self.relations
                ),
                self.alive,
            )
        evidence = dict(
            locks=tuple(own_locks) or finding.locks,
            held=also,
            rewrites=tuple(
                dataclasses.replace(
                    r,
                    relation=self.shown.get(r.relation, r.relation),
                    table=self.shown.get(r.table, r.table),
                )
                for r in summary.rewrites_of(table, self.record.relation_tables)
            ),
            scans=tuple(
                dataclasses.replace(s, relation=finding.table or s.relation)
                for s in summary.scans_of(table)
            )
            if table
            else summary.scans_of(None),
            duration_ms=round(summary.duration_ms, 2),
        )
        if notes:
            finding = finding.replace(notes=(*finding.notes, *notes))
        if ok:
            return finding.replace(evidence=Evidence.OBSERVED, **evidence)
        return finding.replace(
            evidence=Evidence.CONTRADICTED,
            severity=_DOWNGRADE.get(finding.severity, finding.severity),
            notes=(*finding.notes, f"trace: {why}; severity lowered"),
            **evidence,
        )


# --- helpers -------------------------------------------------------------------------


def _position(finding: Finding, record: MigrationRecord) -> Any:
    """Where a finding's statements ran: its first statement, its operation, or None."""
    index = finding.operation.index if finding.operation else -1
    if not 0 <= index < len(record.operations):
        return None
    op = record.operations[index]
    own = statements_of(finding, op)
    return own[0] if own else op


def _tables_of(finding: Finding, record: MigrationRecord) -> set[str]:
    """The tables a finding names (its own, its locks'), as the change found them."""
    at = _position(finding, record)
    names = [finding.table] if finding.table else []
    names += [lock.relation for lock in (*finding.locks, *finding.held)]
    return {record.origin(name, at) or name for name in names}


def _alive(record: MigrationRecord, at: Any) -> dict[str, str]:
    """Pre-existing tables at ``at``: name at the start of the change -> current name."""
    return {origin: name for name, origin in record.names_at(at).items()}


def _renamed(locks: Iterable[Lock], alive: dict[str, str]) -> tuple[Lock, ...]:
    return tuple(
        dataclasses.replace(lock, relation=alive.get(lock.relation, lock.relation))
        for lock in locks
    )


def _relations_of(finding: Finding) -> list[str]:
    """The table of the finding, then every other relation its predicted locks name."""
    out = [finding.table] if finding.table else []
    out += [lock.relation for lock in finding.locks if lock.relation not in out]
    return out


def _first_takers(record: MigrationRecord) -> dict[tuple[str, str], str]:
    """(relation, mode) -> the operation whose statement took it first in the migration."""
    out: dict[tuple[str, str], str] = {}
    stamped: list[tuple[int, Any, OperationRecord]] = []
    for op in record.operations:
        for stmt in op.statements:
            if stmt.observation is not None:
                stamped.append((stmt.seq, stmt, op))
    for _, stmt, op in sorted(stamped, key=lambda item: item[0]):
        label = f"operations[{op.index}] {op.kind}"
        what = _what(stmt, op) or "SQL"
        if stmt.origin == "deferred":
            label += f"'s deferred {what}"
        elif what != "SQL":
            label += f"'s {what}"
        for pair in stmt.observation.locks:
            out.setdefault(pair, label)
    for op in record.operations:
        if op.observation is not None:
            for pair in op.observation.locks:
                out.setdefault(pair, f"operations[{op.index}] {op.kind}")
    return out


def _work_lock(
    summary: Any,
    relation: str,
    mode: str,
    alive: dict[str, str],
    taken_by: dict[tuple[str, str], str],
) -> Lock:
    """The lock held on ``relation`` while it was worked through, and who took it."""
    took = summary.strongest(relation)
    earlier = took is None or pglocks.strength(took) < pglocks.strength(mode)
    who = taken_by.get((relation, mode)) if earlier else None
    return Lock(alive.get(relation, relation), mode, pglocks.blocks(mode), who)


def _what(stmt: ExecutedStatement, op: OperationRecord) -> str:
    """What a statement is, for people: "ALTER TABLE ADD CONSTRAINT UNIQUE"."""
    found = pglocks.statement_locks(stmt.facts, op.table)
    if found:
        return max(found, key=lambda item: pglocks.strength(item[1]))[2]
    return ""


def _held_elsewhere(
    summary: Any, relation: str, alive: dict[str, str], taken_by: dict[tuple[str, str], str]
) -> list[Lock]:
    """Blocking locks held on other pre-existing tables while ``relation`` was worked through."""
    best: dict[str, str] = {}
    for rel, mode in summary.held_during_work.get(relation, ()):
        if rel == relation or rel not in alive or not traced.blocking(mode):
            continue
        if rel not in best or pglocks.strength(mode) > pglocks.strength(best[rel]):
            best[rel] = mode
    return [
        Lock(rel, mode, pglocks.blocks(mode), taken_by.get((rel, mode)))
        for rel, mode in sorted(best.items(), key=lambda kv: (-pglocks.strength(kv[1]), kv[0]))
    ]


def _shown_mode(summary: Any, relation: str, expected: str | None) -> str | None:
    """The mode the finding's statements took on ``relation``, else the one they ran under.

    When the finding expects a lock that only an earlier statement of the
    transaction took (a lock held across the operation), that one is shown.
    """
    own, held = summary.strongest(relation), summary.strongest(relation, held=True)
    if not own:
        # Already held: PostgreSQL records a mode once per transaction. The statements
        # asked for the expected mode when it is among those held.
        if expected and expected in summary.held.get(relation, ()):
            return expected
        return held
    if (
        expected
        and held
        and pglocks.strength(own) < pglocks.strength(expected) <= pglocks.strength(held)
    ):
        return held
    return own


def _held_note(
    summary: Any,
    relation: str,
    shown: str | None,
    taken_by: dict[tuple[str, str], str],
    name: str,
) -> str | None:
    """A stronger lock, taken earlier in the same transaction, held while this ran."""
    held = summary.strongest(relation, held=True)
    if not shown or not held or pglocks.strength(held) <= pglocks.strength(shown):
        return None
    who = taken_by.get((relation, held))
    return (
        f"trace: {name} was already under {pglocks.describe_blocking(held)}, taken "
        + (f"by {who} " if who else "")
        + "earlier in the same transaction, while this ran: "
        f"{pglocks.blocks(held).value} of {name} wait, not only what the lock above blocks"
    )


def _stronger_note(relation: str, shown: str | None, expected: str | None, name: str) -> str | None:
    """The statements took a stronger lock on ``relation`` than the rule's words say."""
    if not shown or not expected or pglocks.strength(shown) <= pglocks.strength(expected):
        return None
    if pglocks.blocks(shown) == pglocks.blocks(expected):
        return None
    return (
        f"trace: these statements took {pglocks.describe_blocking(shown)} on {name}, more than "
        f"the {pglocks.sql_name(expected)} described above: {pglocks.blocks(shown).value} of "
        f"{name} wait"
    )


def _confirms(finding: Finding, summary: Any, prediction: object) -> tuple[bool, str]:
    table = finding.table
    lock = getattr(prediction, "lock", None)
    # a rule may say, per finding, which mode this statement asks for on its table
    own = [lk.mode for lk in finding.locks if lk.relation == table]
    if lock and own:
        lock = own[0]
    seen = summary.strongest(table, held=True)
    problems = []
    if lock and (seen is None or pglocks.strength(seen) < pglocks.strength(lock)):
        problems.append(
            f"expected {pglocks.sql_name(lock)} on {table or 'the table'}, observed "
            + (pglocks.sql_name(seen) if seen else "no lock")
        )
    if getattr(prediction, "rewrite", False) and table not in summary.rewrites:
        problems.append(f"expected a rewrite of {table}, none observed")
    if getattr(prediction, "scan", False) and table and not summary.table_work(table):
        problems.append(f"expected a full scan of {table}, none observed")
    work = summary.work_mode(table) if table else None
    if (
        lock
        and work
        and (getattr(prediction, "rewrite", False) or getattr(prediction, "scan", False))
        and pglocks.strength(work) < pglocks.strength(lock)
    ):
        problems.append(
            f"the table work on {table} ran under {pglocks.sql_name(work)}, "
            f"not {pglocks.sql_name(lock)}"
        )
    return (not problems, "; ".join(problems))
