"""The audit's result: what each renderer formats. Built once, never changed."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import __version__
from .findings import Finding, Lock, Rewrite, Scan, Severity, Traffic, count_by_severity

SCHEMA_VERSION = 2

#: Migration statuses.
AUDITED = "audited"
FAILED = "failed"  # Postgres (or RunPython) raised; the error is a finding too
SKIPPED = "skipped"  # depends on a migration that failed


@dataclasses.dataclass(frozen=True)
class ObservedOperation:
    """What the trace saw one operation do to relations that existed before the change."""

    index: int
    kind: str
    description: str
    line: int | None
    duration_ms: float
    locks: tuple[Lock, ...] = ()
    rewrites: tuple[Rewrite, ...] = ()
    scans: tuple[Scan, ...] = ()
    #: "transaction" (read inside the migration's transaction) or "sampled" (second connection)
    method: str = "transaction"
    #: "operation": its own statements; "deferred": the SQL it queued, which Django runs
    #: when every operation of the migration is done (foreign keys, indexes).
    phase: str = "operation"

    @property
    def rewritten(self) -> frozenset[str]:
        return frozenset(r.relation for r in self.rewrites)

    @property
    def scanned(self) -> frozenset[str]:
        return frozenset(s.relation for s in self.scans)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "description": self.description,
            "line": self.line,
            "duration_ms": round(self.duration_ms, 2),
            "locks": [lock.to_dict() for lock in self.locks],
            "rewrites": [r.to_dict() for r in self.rewrites],
            "scans": [s.to_dict() for s in self.scans],
            "method": self.method,
            "phase": self.phase,
        }


@dataclasses.dataclass(frozen=True)
class MigrationRehearsal:
    """``--rehearse``: the previous release's traffic while one migration ran."""

    #: One entry per table of the previous release the migration touches.
    tables: tuple[Traffic, ...] = ()
    #: A long read transaction was held on each table as the migration started.
    long_read: bool = False
    #: The migration waited for a lock behind another transaction while the previous
    #: release's queries waited behind it (on any table).
    lock_queue: bool = False
    #: How long the migration itself waited for its locks (0 when it never waited).
    migration_waited_ms: float = 0.0
    #: What the reader should know: queries that already failed before the migration
    #: (not counted), models the workload could not write...
    notes: tuple[str, ...] = ()
    #: Seconds the rehearsal added to this migration (preparing, the round after it).
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "long_read": self.long_read,
            "lock_queue": self.lock_queue,
            "migration_waited_ms": round(self.migration_waited_ms, 1),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
        }


@dataclasses.dataclass(frozen=True)
class MigrationResult:
    app_label: str
    name: str
    #: Path relative to the repository root (posix), or None when unknown.
    path: str | None
    atomic: bool
    status: str
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    duration_ms: float | None = None
    operations: int = 0
    #: Per operation, what the trace observed (empty under --no-trace).
    trace: tuple[ObservedOperation, ...] = ()
    #: What the migration's code wrote to standard output and error while it was applied.
    output: str = ""
    #: ``--rehearse``: the previous release's traffic while it ran (None: not rehearsed).
    rehearsal: MigrationRehearsal | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "app_label": self.app_label,
            "name": self.name,
            "path": self.path,
            "atomic": self.atomic,
            "status": self.status,
            "error": self.error,
            "operations": self.operations,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
            "findings": [f.to_dict() for f in self.findings],
            "trace": [t.to_dict() for t in self.trace],
            "output": self.output,
        }
        if self.rehearsal is not None:  # --rehearse only
            out["rehearsal"] = self.rehearsal.to_dict()
        return out


@dataclasses.dataclass(frozen=True)
class PostgresInfo:
    version: str
    major: int
    source: str
    description: str
    #: Production major version, when known, and where it came from.
    production_major: int | None = None
    production_origin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RehearsalSummary:
    """``--rehearse`` as a whole: its settings and what it cost."""

    connections: int
    #: Queries per second per connection.
    rate: float
    threshold_s: float
    #: Seconds a long read transaction was held on each table (0: none).
    long_read_s: float
    #: Rows seeded per table (the ceiling when sizes came from --stats-url).
    rows: int
    #: Migrations that ran under traffic, and the queries sent.
    migrations: int
    queries: int
    #: Seconds the rehearsal added to the audit: seeding, preparing, the round after
    #: each migration, cleaning up (the migrations' own time is not counted).
    seconds: float
    seed_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "connections": self.connections,
            "rate": self.rate,
            "threshold_s": self.threshold_s,
            "long_read_s": self.long_read_s,
            "rows": self.rows,
            "migrations": self.migrations,
            "queries": self.queries,
            "seconds": round(self.seconds, 2),
            "seed_seconds": round(self.seed_seconds, 2),
        }


@dataclasses.dataclass(frozen=True)
class AuditReport:
    change: str
    postgres: PostgresInfo | None
    migrations: tuple[MigrationResult, ...]
    traced: bool
    fail_on: Severity = Severity.ERROR
    #: Things the reader should know about the run (version mismatch, cache use...).
    notes: tuple[str, ...] = ()
    tool_version: str = __version__
    #: ``--rehearse``: settings and cost (None: not rehearsed).
    rehearsal: RehearsalSummary | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for m in self.migrations for f in m.findings]

    def counts(self) -> dict[Severity, int]:
        return count_by_severity(self.findings)

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.severity.at_least(self.fail_on)]

    @property
    def exit_code(self) -> int:
        return 1 if self.failing else 0

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts()
        out: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "django-migration-guard", "version": self.tool_version},
            "postgres": self.postgres.to_dict() if self.postgres else None,
            "change": self.change,
            "traced": self.traced,
            "fail_on": self.fail_on.value,
            "notes": list(self.notes),
            "migrations": [m.to_dict() for m in self.migrations],
            "summary": {
                "migrations": len(self.migrations),
                "errors": counts[Severity.ERROR],
                "warnings": counts[Severity.WARNING],
                "infos": counts[Severity.INFO],
                "failed": sum(1 for m in self.migrations if m.status == FAILED),
                "skipped": sum(1 for m in self.migrations if m.status == SKIPPED),
            },
        }
        if self.rehearsal is not None:  # --rehearse only
            out["rehearsal"] = self.rehearsal.to_dict()
        return out
