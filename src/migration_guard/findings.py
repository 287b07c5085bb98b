"""The values the audit produces: small, frozen, serialisable.

Rules and the tracer create :class:`Finding` objects; renderers only read them.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from typing import Any


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]

    def at_least(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: str, *, where: str = "severity") -> Severity:
        from .exceptions import ConfigurationError

        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ConfigurationError(
                f"{where}: unknown severity {value!r}; use one of error, warning, info"
            ) from None

    def __str__(self) -> str:
        return self.value


class Category(str, enum.Enum):
    LOCKING = "locking"
    COMPATIBILITY = "compatibility"
    REVERSIBILITY = "reversibility"
    DATA = "data"
    CORRECTNESS = "correctness"
    SECURITY = "security"

    def __str__(self) -> str:
        return self.value


class Evidence(str, enum.Enum):
    #: A static rule expects it from the operation and its SQL.
    PREDICTED = "predicted"
    #: The trace saw it happen on PostgreSQL.
    OBSERVED = "observed"
    #: A rule expected it and the trace did not see it; the finding is downgraded.
    CONTRADICTED = "contradicted"

    def __str__(self) -> str:
        return self.value


class Blocks(str, enum.Enum):
    """What other sessions cannot do while a lock is held."""

    READS_AND_WRITES = "reads and writes"
    WRITES = "writes"
    NOTHING = "nothing"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, order=True)
class Lock:
    relation: str
    mode: str
    blocks: Blocks
    #: Who took it, when not the statements the finding is about: a lock taken earlier
    #: in the same transaction and still held ("operations[0] AlterField").
    taken_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "mode": self.mode,
            "blocks": self.blocks.value,
            "taken_by": self.taken_by,
        }


@dataclasses.dataclass(frozen=True, order=True)
class Scan:
    """A table PostgreSQL read in full: ``count`` sequential scans started on it."""

    relation: str
    count: int

    def __str__(self) -> str:
        return f"{self.relation} ({self.count} sequential scan{'s' if self.count != 1 else ''})"

    def to_dict(self) -> dict[str, Any]:
        return {"relation": self.relation, "count": self.count}


@dataclasses.dataclass(frozen=True, order=True)
class Rewrite:
    """A relation whose file PostgreSQL replaced: a table rewrite, or an index rebuild."""

    relation: str
    #: The table: the relation itself, or the table the rebuilt index belongs to.
    table: str

    @property
    def is_index(self) -> bool:
        return self.relation != self.table

    def __str__(self) -> str:
        return f"{self.relation} (index)" if self.is_index else self.relation

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "table": self.table,
            "kind": "index" if self.is_index else "table",
        }


@dataclasses.dataclass(frozen=True)
class OperationRef:
    """Where an operation stands: its index in ``operations``, text and file line."""

    index: int
    description: str
    line: int | None
    kind: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "description": self.description,
            "line": self.line,
            "kind": self.kind,
        }


@dataclasses.dataclass(frozen=True)
class TableSize:
    relation: str
    rows: int
    bytes: int
    #: Estimated seconds the blocked reads/writes would wait; None when unknown.
    estimated_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The previous release's queries (``--rehearse``), in the order they are reported.
QUERY_KINDS = ("select-pk", "select-filtered", "insert", "update", "delete")
QUERY_WORDS = {
    "select-pk": "SELECT by primary key",
    "select-filtered": "filtered SELECT",
    "insert": "INSERT",
    "update": "UPDATE",
    "delete": "DELETE",
}


@dataclasses.dataclass(frozen=True)
class QueryTraffic:
    """How one kind of the previous release's queries on one table fared (``--rehearse``)."""

    #: One of :data:`QUERY_KINDS`.
    kind: str
    #: Queries sent while the migration ran and right after it.
    queries: int
    #: The longest time one of them took, from sent to answered (waiting included).
    longest_wait_ms: float
    #: How many took the threshold or longer.
    over_threshold: int
    #: How many PostgreSQL rejected (not counting those that gave up waiting).
    failed: int
    #: PostgreSQL's distinct errors, each with how many queries got it.
    errors: tuple[tuple[str, int], ...] = ()
    #: Queries that gave up waiting: the workload's own lock_timeout or statement_timeout,
    #: or a deadlock PostgreSQL broke (counted as waits, not failures).
    gave_up: int = 0

    @property
    def reads(self) -> bool:
        return self.kind.startswith("select")

    @property
    def words(self) -> str:
        return QUERY_WORDS.get(self.kind, self.kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "queries": self.queries,
            "longest_wait_ms": round(self.longest_wait_ms, 1),
            "over_threshold": self.over_threshold,
            "failed": self.failed,
            "errors": [{"error": text, "count": count} for text, count in self.errors],
            "gave_up": self.gave_up,
        }


@dataclasses.dataclass(frozen=True)
class TrafficEstimate:
    """The longest wait scaled from the rehearsed table to production's (an estimate)."""

    production_rows: int
    rehearsed_rows: int
    seconds: float
    #: "linear" (scans, rewrites) or "n log n" (index builds).
    scaling: str
    #: "scan", "rewrite" or "index build": the work the wait was for.
    work: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "production_rows": self.production_rows,
            "rehearsed_rows": self.rehearsed_rows,
            "seconds": round(self.seconds, 2),
            "scaling": self.scaling,
            "work": self.work,
        }


@dataclasses.dataclass(frozen=True)
class Traffic:
    """The previous release's queries on one table while a migration ran (``--rehearse``).

    Measured on the scratch database: the models of the state before the
    change, through Django's ORM, on other connections at a set rate, while the
    migration ran and once more right after it committed.
    """

    #: The table as the previous release names it.
    table: str
    #: The operation whose lock or change the queries met (the one that took the
    #: strongest lock on the table); None when the trace saw no lock on it.
    operation: OperationRef | None
    #: Rows in the table when the migration started.
    rows: int
    threshold_ms: float
    kinds: tuple[QueryTraffic, ...] = ()
    #: The migration waited for its lock behind another transaction while these
    #: queries waited behind the migration.
    lock_queue: bool = False
    estimate: TrafficEstimate | None = None

    @property
    def queries(self) -> int:
        return sum(k.queries for k in self.kinds)

    @property
    def failed(self) -> int:
        return sum(k.failed for k in self.kinds)

    @property
    def over_threshold(self) -> int:
        return sum(k.over_threshold for k in self.kinds)

    @property
    def longest_wait_ms(self) -> float:
        return max((k.longest_wait_ms for k in self.kinds), default=0.0)

    def longest(self, *, reads: bool) -> float:
        """The longest wait of the reads (SELECT) or of the writes."""
        return max((k.longest_wait_ms for k in self.kinds if k.reads is reads), default=0.0)

    @property
    def failing(self) -> tuple[QueryTraffic, ...]:
        return tuple(k for k in self.kinds if k.failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "operation": self.operation.to_dict() if self.operation else None,
            "rows": self.rows,
            "threshold_ms": round(self.threshold_ms, 1),
            "queries": self.queries,
            "longest_wait_ms": round(self.longest_wait_ms, 1),
            "over_threshold": self.over_threshold,
            "failed": self.failed,
            "lock_queue": self.lock_queue,
            "kinds": [k.to_dict() for k in self.kinds],
            "estimate": self.estimate.to_dict() if self.estimate else None,
        }


@dataclasses.dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    category: Category
    message: str
    fix: str
    app_label: str
    migration: str
    operation: OperationRef | None = None
    evidence: Evidence = Evidence.PREDICTED
    locks: tuple[Lock, ...] = ()
    #: Blocking locks on *other* tables that existed before the change, held while the
    #: finding's statements worked through their table (taken earlier in the transaction):
    #: their traffic waits as long. Each says who took it.
    held: tuple[Lock, ...] = ()
    rewrites: tuple[Rewrite, ...] = ()
    scans: tuple[Scan, ...] = ()
    sql: tuple[str, ...] = ()
    #: The table the finding is about, when there is one (sizes are looked up by it).
    table: str | None = None
    #: ``manage.py plan_zero_downtime ...`` when a planner strategy covers the finding.
    plan_command: str | None = None
    notes: tuple[str, ...] = ()
    sizes: tuple[TableSize, ...] = ()
    duration_ms: float | None = None
    #: ``--rehearse``: the previous release's queries on the finding's tables while the
    #: migration ran (waits, failures).
    traffic: tuple[Traffic, ...] = ()

    @property
    def line(self) -> int | None:
        return self.operation.line if self.operation else None

    @property
    def rewritten(self) -> frozenset[str]:
        """Names of the relations seen rewritten (tables and indexes)."""
        return frozenset(r.relation for r in self.rewrites)

    @property
    def scanned(self) -> frozenset[str]:
        """Names of the tables seen scanned in full."""
        return frozenset(s.relation for s in self.scans)

    def replace(self, **changes: Any) -> Finding:
        return dataclasses.replace(self, **changes)

    def sort_key(self) -> tuple[Any, ...]:
        index = self.operation.index if self.operation else -1
        return (
            self.app_label,
            self.migration,
            index,
            -self.severity.rank,
            self.rule,
            self.table or "",
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "category": self.category.value,
            "message": self.message,
            "fix": self.fix,
            "evidence": self.evidence.value,
            "operation": self.operation.to_dict() if self.operation else None,
            "table": self.table,
            "locks": [lock.to_dict() for lock in self.locks],
            "held": [lock.to_dict() for lock in self.held],
            "rewrites": [r.to_dict() for r in self.rewrites],
            "scans": [s.to_dict() for s in self.scans],
            "sql": list(self.sql),
            "sizes": [s.to_dict() for s in self.sizes],
            "duration_ms": self.duration_ms,
            "plan_command": self.plan_command,
            "notes": list(self.notes),
        }
        if self.traffic:  # --rehearse only: reports of plain audits are unchanged
            out["traffic"] = [t.to_dict() for t in self.traffic]
        return out


def count_by_severity(findings: Iterable[Finding]) -> dict[Severity, int]:
    counts = {s: 0 for s in Severity}
    for finding in findings:
        counts[finding.severity] += 1
    return counts
