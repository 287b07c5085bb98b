"""``--format text``: for people, grouped by migration.

Every name, path, message and SQL text comes from the merge request: control
characters in them are shown as escapes (a line break in a file name cannot
forge a line), and no output line starts with ``::`` (a GitHub Actions
workflow command). See ``report.escaping``.
"""

from __future__ import annotations

import textwrap
from typing import Any

from .. import pglocks as lockmodes
from ..findings import Blocks, Evidence, Finding, Lock, Severity, Traffic
from ..results import FAILED, SKIPPED, AuditReport, MigrationResult
from . import RenderOptions, register
from . import _traffic as traffic_words
from .escaping import neutralise_commands, one_line, printable

_WIDTH = 100
_INDENT = " " * 10


class _Plain:
    def __getattr__(self, name: str) -> Any:
        return lambda text: text


def _styles(options: RenderOptions) -> Any:
    return options.style or _Plain()


def _severity(style: Any, severity: Severity) -> str:
    text = f"{severity.value:<7}"
    if severity is Severity.ERROR:
        return style.ERROR(text)
    if severity is Severity.WARNING:
        return style.WARNING(text)
    return style.NOTICE(text)


def _wrap(label: str, text: str) -> list[str]:
    out: list[str] = []
    first = f"{_INDENT}{label:<6}"
    for number, paragraph in enumerate(text.splitlines() or [""]):
        lines = textwrap.wrap(
            paragraph,
            width=_WIDTH,
            initial_indent=first if number == 0 else _INDENT + " " * 6,
            subsequent_indent=_INDENT + " " * 6,
        ) or [first.rstrip()]
        out.extend(lines)
    return out


def _locks(finding: Finding) -> str | None:
    if not finding.locks:
        return None
    text = "; ".join(_lock_text(lock) for lock in finding.locks)
    if finding.evidence is Evidence.OBSERVED:
        text += " [observed]"
    elif finding.evidence is Evidence.CONTRADICTED:
        text += " [predicted; not observed]"
    else:
        text += " [predicted]"
    return text


def _lock_text(lock: Lock) -> str:
    text = (
        f"{lockmodes.sql_name(lock.mode)} on {one_line(lock.relation)} "
        f"({lockmodes.blocking_text(lock.mode)}"
    )
    if lock.taken_by:
        text += f"; taken by {one_line(lock.taken_by)}"
    return text + ")"


def _finding(finding: Finding, result: MigrationResult, style: Any, verbosity: int) -> list[str]:
    where = one_line(result.path or f"{result.app_label}/{result.name}")
    if finding.line:
        where = f"{where}:{finding.line}"
    op = finding.operation
    rule = style.MIGRATE_LABEL(one_line(finding.rule))
    head = f"  {_severity(style, finding.severity)} {rule}  {where}"
    lines = [head]
    if op is not None and op.index >= 0:
        lines += _wrap("op", f"operations[{op.index}] {one_line(op.description)}")
    lock = _locks(finding)
    if lock:
        lines += _wrap("lock", lock)
    if finding.held:
        lines += _wrap("held", "; ".join(_lock_text(lock) for lock in finding.held))
    evidence = []
    if finding.rewrites:
        evidence.append("rewrote " + ", ".join(map(one_line, finding.rewrites)))
    if finding.scans:
        evidence.append("scanned " + ", ".join(map(one_line, finding.scans)))
    if evidence:
        lines += _wrap("seen", "; ".join(evidence))
    for size in finding.sizes:
        est = (
            f", {_waiting(finding, size.relation)} would wait about "
            f"{size.estimated_seconds:.1f}s (estimate)"
            if size.estimated_seconds is not None
            else ""
        )
        relation = one_line(size.relation)
        lines += _wrap("size", f"{relation}: {size.rows:,} rows, {_bytes(size.bytes)}{est}")
    for traffic in finding.traffic:
        lines += _traffic(traffic)
    lines += _wrap("why", printable(finding.message))
    lines += _wrap("fix", printable(finding.fix))
    if finding.plan_command:
        lines += _wrap("plan", one_line(finding.plan_command))
    for note in finding.notes:
        lines += _wrap("note", one_line(note))
    if verbosity >= 2 and finding.sql:
        lines += _wrap("sql", printable("\n".join(finding.sql)))
    return lines


def _traffic(traffic: Traffic) -> list[str]:
    """--rehearse: how the previous release's queries on one table fared."""
    lines = _wrap("waits", one_line(traffic_words.waits(traffic)))
    for line in traffic_words.failures(traffic):
        lines += _wrap("fails", one_line(line))
    return lines


def _rehearsal(result: MigrationResult) -> list[str]:
    """--rehearse: every table's traffic during the migration, and what to know (-v 2)."""
    if result.rehearsal is None:
        return []
    lines = []
    for traffic in result.rehearsal.tables:
        lines += _traffic(traffic)
    for note in result.rehearsal.notes:
        lines += _wrap("note", one_line(f"rehearsal: {note}"))
    return lines


def _waiting(finding: Finding, relation: str) -> str:
    """Who waits on ``relation``: "writes", or "reads and writes"."""
    blocked = [lock.blocks for lock in finding.locks if lock.relation == relation]
    if Blocks.READS_AND_WRITES in blocked:
        return "reads and writes"
    return "writes" if Blocks.WRITES in blocked else "reads and writes"


def _trace(result: MigrationResult) -> list[str]:
    """Everything the trace saw, operation by operation (-v 2)."""
    lines = []
    for seen in result.trace:
        parts = [
            f"{lockmodes.sql_name(lock.mode)} on {one_line(lock.relation)}"
            + ("" if lock.blocks is Blocks.NOTHING else f" (blocks {lock.blocks.value})")
            for lock in seen.locks
        ]
        if seen.rewrites:
            parts.append("rewrote " + ", ".join(map(one_line, seen.rewrites)))
        if seen.scans:
            parts.append("scanned " + ", ".join(map(one_line, seen.scans)))
        what = "; ".join(parts) or "no lock on existing tables"
        how = " [sampled]" if seen.method == "sampled" else ""
        who = f"operations[{seen.index}] {one_line(seen.kind)}"
        if seen.phase == "deferred":
            who = f"deferred SQL of {who}, at the end of the migration"
        lines += _wrap("trace", f"{who}, {seen.duration_ms:.1f} ms: {what}{how}")
    return lines


def _output(result: MigrationResult) -> list[str]:
    """What the migration's code printed while it was applied (-v 2)."""
    lines = printable(result.output).splitlines()
    if not lines:
        return []
    shown = lines[:_OUTPUT_LINES]
    if len(lines) > len(shown):
        shown.append(f"[... {len(lines) - len(shown)} more lines in the JSON report]")
    return [f"{_INDENT}output", *(f"{_INDENT}  | {line}" for line in shown)]


_OUTPUT_LINES = 40


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@register("text")
def render_text(report: AuditReport, options: RenderOptions) -> str:
    style = _styles(options)
    out: list[str] = []
    where = (
        f"PostgreSQL {report.postgres.version} ({report.postgres.source})"
        if report.postgres
        else "no PostgreSQL needed"
    )
    mode = "traced" if report.traced else "static only (--no-trace)"
    out.append(style.MIGRATE_HEADING(f"Change: {one_line(report.change)}"))
    out.append(f"Audited {len(report.migrations)} migration(s) on {one_line(where)}, {mode}.")
    for note in report.notes:
        out.append(style.WARNING(f"Note: {one_line(note)}"))
    out.append("")
    clean = 0
    for result in report.migrations:
        if not result.findings and result.status not in (FAILED, SKIPPED):
            clean += 1
            if options.verbosity >= 2:
                out.append(f"{one_line(result.app_label)}.{one_line(result.name)}: no findings")
                out.extend(_trace(result))
                out.extend(_rehearsal(result))
                out.extend(_output(result))
                out.append("")
            continue
        title = one_line(f"{result.app_label}.{result.name}")
        if result.path:
            title += f"  ({one_line(result.path)})"
        out.append(style.MIGRATE_HEADING(title))
        if result.status == SKIPPED:
            out.append(f"  skipped: {one_line(result.error)}")
        for finding in result.findings:
            out.extend(_finding(finding, result, style, options.verbosity))
        if options.verbosity >= 2:
            out.extend(_trace(result))
            out.extend(_rehearsal(result))
            out.extend(_output(result))
        out.append("")
    counts = report.counts()
    summary = (
        f"{counts[Severity.ERROR]} error(s), {counts[Severity.WARNING]} warning(s), "
        f"{counts[Severity.INFO]} info(s) in {len(report.migrations)} migration(s); "
        f"{clean} without findings."
    )
    failing = len(report.failing)
    if failing:
        summary += f" {failing} at or above --fail-on {report.fail_on.value}: exit status 1."
        out.append(style.ERROR(summary))
    else:
        summary += f" Nothing at or above --fail-on {report.fail_on.value}."
        out.append(style.SUCCESS(summary))
    return neutralise_commands("\n".join(out) + "\n")
