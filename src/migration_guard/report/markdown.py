"""``--format markdown``: the merge-request comment, from a Jinja2 template.

It starts with a hidden marker (:data:`MARKER`) by which ``migration-guard
comment`` finds and updates its own comment, then a one-line verdict, a table
of findings and one collapsible ``<details>`` section per finding with the SQL,
the why and the fix. The view model is built here; the template
(``templates/comment.md.j2``) only lays it out.

Comments have a size limit (GitHub 65,536 characters): :func:`render_markdown`
with ``max_chars`` leaves out detail sections, then table rows, until the
comment fits, and says so with a link to the full report.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Any

import jinja2

from .. import pglocks as lockmodes
from .. import rules as rules_pkg
from ..findings import Blocks, Evidence, Finding, Severity, TableSize
from ..results import FAILED, SKIPPED, AuditReport, MigrationResult
from . import RenderOptions, register
from . import _traffic as traffic_words
from .escaping import code_block, fence, html_text, md_cell, md_code, md_text
from .sarif import help_uri

#: The hidden first line by which the comment is found again.
MARKER = "<!-- migration-guard-report -->"
TEMPLATE = "comment.md.j2"

ICONS = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}


# -- escaping (used as template filters; see report.escaping) -----------------------------


def escape_html(text: str) -> str:
    """Text inside raw HTML, on one line."""
    return html_text(text)


def escape_cell(text: str) -> str:
    """One table cell: literal text on one line, pipes and backslashes escaped."""
    return md_cell(text)


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    return f"{count} {word if count == 1 else (plural_form or word + 's')}"


# -- view model ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Row:
    icon: str
    severity: str
    rule: str
    rule_url: str
    title: str
    migration: str
    where: str
    #: The operation for the table (with its line) and for the details (without).
    operation: str
    operation_text: str
    lock: str
    blocks: str
    size: str
    evidence: str
    message: str
    fix: str
    sql: str
    plan_command: str | None
    notes: tuple[str, ...]
    #: --rehearse: how the previous release's queries on the finding's tables fared.
    traffic: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TrafficRow:
    """--rehearse: one table of one migration where the previous release failed or waited."""

    migration: str
    operation: str
    table: str
    longest: str
    over: str
    failed: str


#: At most this many tables in the rehearsal table of the comment.
TRAFFIC_ROWS = 20


def _title(rule_id: str) -> str:
    cls = rules_pkg.registry().get(rule_id)
    return cls.title() if cls is not None else ""


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def _size(size: TableSize, several: bool) -> str:
    text = f"{size.rows:,} rows, {_human_bytes(size.bytes)}"
    if size.estimated_seconds is not None:
        text += f", ~{size.estimated_seconds:.1f} s blocked"
    return f"{size.relation}: {text}" if several else text


def _evidence(finding: Finding) -> str:
    words = {
        Evidence.OBSERVED: "observed",
        Evidence.PREDICTED: "predicted",
        Evidence.CONTRADICTED: "predicted, not observed",
    }
    seen = []
    if finding.rewrites:
        seen.append("table rewrite")
    if finding.scans:
        seen.append("full scan")
    if any(t.failed for t in finding.traffic):
        seen.append("previous release failed")  # --rehearse
    text = words[finding.evidence]
    return f"{text} ({', '.join(seen)})" if seen else text


def _row(finding: Finding, result: MigrationResult) -> Row:
    op = finding.operation
    operation = operation_text = ""
    if op is not None:
        operation = operation_text = (
            op.description if op.index < 0 else f"#{op.index} {op.description}"
        )
        if op.line:
            operation += f" (line {op.line})"
    where = result.path or f"{result.app_label}.{result.name}"
    if finding.line:
        where += f":{finding.line}"
    blocks = []
    for lock in finding.locks:
        blocks.append("nothing" if lock.blocks is Blocks.NOTHING else lock.blocks.value)
    return Row(
        icon=ICONS[finding.severity],
        severity=finding.severity.value,
        rule=finding.rule,
        rule_url=help_uri(finding.rule),
        title=_title(finding.rule),
        migration=f"{result.app_label}.{result.name}",
        where=where,
        operation=operation,
        operation_text=operation_text,
        lock="\n".join(f"{lockmodes.sql_name(lk.mode)} on {lk.relation}" for lk in finding.locks),
        blocks="\n".join(blocks),
        size="\n".join(_size(s, len(finding.sizes) > 1) for s in finding.sizes),
        evidence=_evidence(finding),
        message=finding.message.strip(),
        fix=finding.fix.strip(),
        sql="\n".join(s.rstrip() for s in finding.sql).strip(),
        plan_command=finding.plan_command,
        notes=finding.notes,
        traffic=tuple(
            line
            for traffic in finding.traffic
            for line in (traffic_words.waits(traffic), *traffic_words.failures(traffic))
        ),
    )


def _rehearsal(report: AuditReport) -> dict[str, Any] | None:
    """--rehearse: a short per-table table where the previous release failed or waited."""
    rehearsed = [m for m in report.migrations if m.rehearsal is not None]
    if report.rehearsal is None and not rehearsed:
        return None
    rows: list[TrafficRow] = []
    queries = 0
    threshold = "1 s"
    for m in rehearsed:
        assert m.rehearsal is not None
        for t in m.rehearsal.tables:
            queries += t.queries
            threshold = traffic_words.threshold(t)
            if not (t.failed or t.over_threshold):
                continue
            op = t.operation
            rows.append(
                TrafficRow(
                    migration=f"{m.app_label}.{m.name}",
                    operation=f"#{op.index} {op.description}" if op and op.index >= 0 else "",
                    table=t.table,
                    longest=traffic_words.seconds(t.longest_wait_ms)
                    + (" (lock queue)" if t.lock_queue else ""),
                    over=f"{t.over_threshold} of {t.queries}",
                    failed=traffic_words.failed_cell(t),
                )
            )
    summary = (
        f"The previous release's queries ran during {plural(len(rehearsed), 'migration')} "
        f"({queries:,} queries): "
    )
    if rows:
        summary += f"on {plural(len(rows), 'table')} some failed or waited {threshold} or longer."
    else:
        summary += f"none failed, none waited {threshold} or longer."
    return {
        "summary": summary,
        "threshold": threshold,
        "rows": rows[:TRAFFIC_ROWS],
        "more": max(0, len(rows) - TRAFFIC_ROWS),
    }


def _verdict(report: AuditReport) -> str:
    """The heading, from counts and the fail-on level alone: never from report text."""
    counts = report.counts()
    migrations = plural(len(report.migrations), "migration")
    parts = [
        plural(counts[Severity.ERROR], "error"),
        plural(counts[Severity.WARNING], "warning"),
        plural(counts[Severity.INFO], "info"),
    ]
    found = ", ".join(p for p in parts if not p.startswith("0 "))
    fail_on = f"`--fail-on {report.fail_on.value}`"
    if not report.migrations:
        return "✅ **No migrations to audit** in this change."
    if report.failing:
        return (
            f"❌ **Unsafe for a zero-downtime deploy**: {found} in {migrations} "
            f"(fails at {fail_on})."
        )
    if report.findings:
        return (
            f"⚠️ **Review before deploying**: {found} in {migrations}, none at or above {fail_on}."
        )
    return f"✅ **No unsafe operations** in {migrations}."


def _context(report: AuditReport, options: RenderOptions) -> dict[str, Any]:
    rows = [_row(f, m) for m in report.migrations for f in m.findings]
    pg = report.postgres
    footer = [f"django-migration-guard {report.tool_version}"]
    if pg is not None:
        footer.append(f"PostgreSQL {pg.version} ({pg.source})")
    footer.append("locks traced" if report.traced else "static rules only")
    footer.append(f"change: {report.change}")
    return {
        "marker": MARKER,
        "verdict": _verdict(report),
        "rows": rows,
        "notes": list(report.notes),
        "rehearsal": _rehearsal(report),
        "failed": [m for m in report.migrations if m.status == FAILED],
        "skipped": [m for m in report.migrations if m.status == SKIPPED],
        "footer": " · ".join(footer),
        "report_url": options.report_url,
        "shown_rows": len(rows),
        "shown_details": len(rows),
        "cut": False,
    }


# -- rendering ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("migration_guard.report", "templates"),
        autoescape=False,  # markdown, not HTML: values are escaped by filter where they land
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["cell"] = md_cell
    env.filters["text"] = md_text
    env.filters["code"] = md_code
    env.filters["html"] = html_text
    env.filters["fence"] = fence
    env.filters["block"] = code_block
    env.filters["link"] = _link
    env.globals["plural"] = plural
    return env


def _link(url: str) -> str:
    """A link destination that cannot end early: blanks, brackets, quotes percent-encoded."""
    return re.sub(r"[\s<>()\\\"'`]", lambda m: f"%{ord(m.group()):02X}", str(url))


def _render(context: dict[str, Any]) -> str:
    text = environment().get_template(TEMPLATE).render(**context)
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def render_markdown(
    report: AuditReport, options: RenderOptions | None = None, *, max_chars: int | None = None
) -> str:
    """The comment for ``report``; at most ``max_chars`` characters when given."""
    context = _context(report, options or RenderOptions())
    text = _render(context)
    if max_chars is None or len(text) <= max_chars:
        return text
    total = len(context["rows"])
    context["cut"] = True

    def fits(details: int, rows: int) -> str | None:
        out = _render({**context, "shown_details": details, "shown_rows": rows})
        return out if len(out) <= max_chars else None

    # Leave out detail sections from the end, then table rows, as few as possible.
    best = _largest(total, lambda n: fits(n, total))
    if best is None:
        best = _largest(total, lambda n: fits(0, n))
    if best is not None:
        return best
    # Even the verdict alone is too long (tiny limit): a hard cut is all that is left.
    return _render({**context, "shown_details": 0, "shown_rows": 0})[:max_chars]


def _largest(total: int, attempt: Any) -> str | None:
    """The output of ``attempt(n)`` for the largest n in 0..total that fits (binary search)."""
    lo, hi = 0, total
    found = attempt(0)
    if found is None:
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        out = attempt(mid)
        if out is not None:
            lo, found = mid, out
        else:
            hi = mid - 1
    return found


@register("markdown")
def render_markdown_format(report: AuditReport, options: RenderOptions) -> str:
    return render_markdown(report, options)
