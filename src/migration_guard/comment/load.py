"""Rebuild an :class:`~migration_guard.results.AuditReport` from ``--format json`` output.

The JSON report is the contract between the audit job and later CI steps
(``migration-guard comment``, ``migration-guard render``): they run without the
Django project, read the file, and hand the rebuilt report to the same
renderers the command uses.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..exceptions import ConfigurationError
from ..findings import (
    Blocks,
    Category,
    Evidence,
    Finding,
    Lock,
    OperationRef,
    QueryTraffic,
    Rewrite,
    Scan,
    Severity,
    TableSize,
    Traffic,
    TrafficEstimate,
)
from ..results import (
    SCHEMA_VERSION,
    AuditReport,
    MigrationRehearsal,
    MigrationResult,
    ObservedOperation,
    PostgresInfo,
    RehearsalSummary,
)


class ReportFormatError(ConfigurationError):
    """A JSON report file is missing, unreadable or not a migration-guard report."""


def read_report(path: str | Path) -> AuditReport:
    """Load the JSON report at ``path`` (``-`` is not supported: pass a file)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportFormatError(
            f"report {path} does not exist: write it with "
            f"`manage.py migration_audit --format json --output {path}`"
        ) from None
    except OSError as exc:
        raise ReportFormatError(f"cannot read the report {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReportFormatError(
            f"report {path} is not JSON ({exc}): pass the file written by "
            "`migration_audit --format json --output FILE`"
        ) from None
    return report_from_dict(data, source=str(path))


def report_from_dict(data: Any, *, source: str = "report") -> AuditReport:
    """The :class:`AuditReport` whose ``to_dict()`` is ``data``."""
    if not isinstance(data, dict) or "migrations" not in data or "schema_version" not in data:
        raise ReportFormatError(
            f"{source} is not a migration-guard JSON report (no schema_version/migrations): "
            "pass the file written by `migration_audit --format json --output FILE`"
        )
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportFormatError(
            f"{source} has schema_version {data['schema_version']!r}; this migration-guard "
            f"reads version {SCHEMA_VERSION}: use the same migration-guard version for the "
            "audit and for this step"
        )
    try:
        return _report(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportFormatError(
            f"{source} is not a valid migration-guard report: {exc!r}"
        ) from None


def _report(data: dict[str, Any]) -> AuditReport:
    postgres = data.get("postgres")
    tool = data.get("tool") or {}
    kwargs: dict[str, Any] = {}
    if tool.get("version"):
        kwargs["tool_version"] = str(tool["version"])
    return AuditReport(
        change=str(data.get("change", "")),
        postgres=None if not postgres else PostgresInfo(**postgres),
        migrations=tuple(_migration(m) for m in data["migrations"]),
        traced=bool(data.get("traced", True)),
        fail_on=Severity(data.get("fail_on", "error")),
        notes=tuple(data.get("notes") or ()),
        rehearsal=RehearsalSummary(**data["rehearsal"]) if data.get("rehearsal") else None,
        **kwargs,
    )


def _migration(data: dict[str, Any]) -> MigrationResult:
    return MigrationResult(
        app_label=data["app_label"],
        name=data["name"],
        path=data.get("path"),
        atomic=bool(data.get("atomic", True)),
        status=data.get("status", "audited"),
        findings=tuple(_finding(f, data["app_label"], data["name"]) for f in data["findings"]),
        error=data.get("error"),
        duration_ms=data.get("duration_ms"),
        operations=int(data.get("operations") or 0),
        trace=tuple(_observed(t) for t in data.get("trace") or ()),
        output=str(data.get("output") or ""),
        rehearsal=_rehearsal(data["rehearsal"]) if data.get("rehearsal") else None,
    )


def _rehearsal(data: dict[str, Any]) -> MigrationRehearsal:
    return MigrationRehearsal(
        tables=tuple(_traffic(t) for t in data.get("tables") or ()),
        long_read=bool(data.get("long_read")),
        lock_queue=bool(data.get("lock_queue")),
        migration_waited_ms=float(data.get("migration_waited_ms") or 0.0),
        notes=tuple(str(n) for n in data.get("notes") or ()),
        seconds=float(data.get("seconds") or 0.0),
    )


def _traffic(data: dict[str, Any]) -> Traffic:
    estimate = data.get("estimate")
    return Traffic(
        table=str(data["table"]),
        operation=_operation(data.get("operation")),
        rows=int(data.get("rows") or 0),
        threshold_ms=float(data.get("threshold_ms") or 1000.0),
        kinds=tuple(
            QueryTraffic(
                kind=str(k["kind"]),
                queries=int(k["queries"]),
                longest_wait_ms=float(k["longest_wait_ms"]),
                over_threshold=int(k["over_threshold"]),
                failed=int(k["failed"]),
                errors=tuple((str(e["error"]), int(e["count"])) for e in k.get("errors") or ()),
                gave_up=int(k.get("gave_up") or 0),
            )
            for k in data.get("kinds") or ()
        ),
        lock_queue=bool(data.get("lock_queue")),
        estimate=None if not estimate else TrafficEstimate(**estimate),
    )


def _operation(op: Any) -> OperationRef | None:
    if op is None:
        return None
    return OperationRef(
        index=int(op["index"]),
        description=op.get("description", ""),
        line=op.get("line"),
        kind=op.get("kind", ""),
    )


def _lock(data: dict[str, Any]) -> Lock:
    return Lock(
        relation=data["relation"],
        mode=data["mode"],
        blocks=Blocks(data["blocks"]),
        taken_by=data.get("taken_by"),
    )


def _scan(data: dict[str, Any]) -> Scan:
    return Scan(relation=str(data["relation"]), count=int(data["count"]))


def _rewrite(data: dict[str, Any]) -> Rewrite:
    relation = str(data["relation"])
    return Rewrite(relation=relation, table=str(data.get("table") or relation))


def _observed(data: dict[str, Any]) -> ObservedOperation:
    return ObservedOperation(
        index=int(data["index"]),
        kind=data.get("kind", ""),
        description=data.get("description", ""),
        line=data.get("line"),
        duration_ms=float(data.get("duration_ms") or 0.0),
        locks=tuple(_lock(lk) for lk in data.get("locks") or ()),
        rewrites=tuple(_rewrite(r) for r in data.get("rewrites") or ()),
        scans=tuple(_scan(x) for x in data.get("scans") or ()),
        method=data.get("method", "transaction"),
        phase=data.get("phase", "operation"),
    )


def _rule_id(value: Any) -> str:
    """A rule id of this installation: a report naming another is refused, since its
    text would be rendered as ours."""
    from .. import rules as rules_pkg

    rule = str(value)
    if rule not in rules_pkg.registry():
        raise ReportFormatError(
            f"the report names a rule this migration-guard does not have ({rule!r:.80}): it "
            "was written by another version or altered. Use the same migration-guard version "
            "for the audit and for this step."
        )
    return rule


def _finding(data: dict[str, Any], app_label: str, migration: str) -> Finding:
    op = data.get("operation")
    return Finding(
        rule=_rule_id(data["rule"]),
        severity=Severity(data["severity"]),
        category=Category(data["category"]),
        message=data.get("message", ""),
        fix=data.get("fix", ""),
        app_label=app_label,
        migration=migration,
        operation=None
        if op is None
        else OperationRef(
            index=int(op["index"]),
            description=op.get("description", ""),
            line=op.get("line"),
            kind=op.get("kind", ""),
        ),
        evidence=Evidence(data.get("evidence", "predicted")),
        traffic=tuple(_traffic(t) for t in data.get("traffic") or ()),
        locks=tuple(_lock(lk) for lk in data.get("locks") or ()),
        held=tuple(_lock(lk) for lk in data.get("held") or ()),
        rewrites=tuple(_rewrite(r) for r in data.get("rewrites") or ()),
        scans=tuple(_scan(x) for x in data.get("scans") or ()),
        sql=tuple(data.get("sql") or ()),
        table=data.get("table"),
        plan_command=data.get("plan_command"),
        notes=tuple(data.get("notes") or ()),
        sizes=tuple(TableSize(**s) for s in data.get("sizes") or ()),
        duration_ms=data.get("duration_ms"),
    )
