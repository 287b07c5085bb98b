"""What the command prints: the summary, and under --dry-run the files and diffs."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from .model import FileChange


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def render_files(changes: list[FileChange], root: Path) -> str:
    """Every file the plan writes (in full) and every edit (as a unified diff)."""
    out: list[str] = []
    for change in changes:
        rel = _rel(change.path, root)
        if change.role == "migration" and change.new is not None:
            out.append(f"--- {rel} (new)")
            out.append(change.new.rstrip("\n"))
            out.append("")
        elif change.new is None:
            out.append(f"--- {rel} (removed: {change.description})")
            out.append("")
        else:
            diff = difflib.unified_diff(
                (change.old or "").splitlines(keepends=True),
                change.new.splitlines(keepends=True),
                fromfile=f"a/{rel}",
                tofile=f"b/{rel}",
            )
            out.append("".join(diff).rstrip("\n"))
            out.append("")
    return "\n".join(out) + "\n"


def render_summary(outcome: Any, root: Path) -> str:
    request = outcome.request
    lines: list[str] = []
    if outcome.kind == "nothing":
        lines.extend(outcome.notes or ["Nothing to plan."])
        return "\n".join(lines) + "\n"
    strategies = ", ".join(outcome.strategies) or "none (every operation is safe as it is)"
    what = outcome.description
    lines.append(f"Zero-downtime plan for {what}")
    lines.append(f"  strategies: {strategies}")
    pg = outcome.pg
    if pg is not None:
        origin = "default" if pg.origin == "default" else "--postgres-version/settings"
        lines.append(f"  PostgreSQL behaviour: {pg.major} ({origin})")
    verb = {
        "write": "written" if outcome.written else "not written",
        "dry-run": "dry run, not written",
        "check": "would be written",
    }[request.mode]
    if outcome.migrations:
        release = outcome.migrations[0].release
        total = outcome.releases
        label = f"Release {release}" + (f" of {total}" if total > 1 else "")
        lines.append(f"{label}, deploy with this change ({verb}):")
        for migration in outcome.migrations:
            kind = "atomic" if migration.atomic else "not atomic"
            lines.append(f"  {_rel(migration.path, root)}  [{', '.join(migration.phases)}; {kind}]")
            for step in dict.fromkeys(s.title for s in migration.steps):
                lines.append(f"      {step}")
    later = [
        p for p in outcome.pending if p in outcome.added_pending or p.plan == _plan_of(outcome)
    ]
    if later:
        record = _rel(outcome.record, root) if outcome.record else "the plan record"
        releases = sorted({p.release for p in later})
        for release in releases:
            lines.append(
                f"Release {release}: pending in {record}, to write once release {release - 1} "
                "is deployed everywhere:"
            )
            for entry in later:
                if entry.release == release:
                    lines.append(f"      {entry.title}")
        lines.append(f"  next step: {request.manage} plan_zero_downtime {request.app_label}")
    others = [c for c in outcome.changes if c.role != "migration"]
    for change in others:
        label = {
            "models": "models edited",
            "replaced": "removed",
            "dependant": "rewired",
            "record": "plan record",
        }.get(change.role, change.role)
        lines.append(f"{label}: {_rel(change.path, root)} ({change.description})")
    verification = outcome.verification
    if verification is not None:
        lines.extend(_verification_lines(verification))
        if outcome.restored:
            lines.append("  restored: " + "; ".join(outcome.restored))
    elif request.mode == "write" and outcome.written:
        lines.append("Not verified (--no-verify).")
    for note in dict.fromkeys(outcome.notes):
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _plan_of(outcome: Any) -> str | None:
    if outcome.added_pending:
        return str(outcome.added_pending[0].plan)
    return None


def _verification_lines(v: Any) -> list[str]:
    lines = []
    where = f" on {v.postgres}" if v.postgres else ""
    data = v.data
    if v.ok:
        parts = ["state matches the models", "the project imports in a fresh process"]
        if not any("round trip and audit skipped" in s for s in v.skipped):
            if data is not None and data.seeded:
                parts.append(
                    f"forward, back and forward again on {sum(data.seeded.values())} rows of "
                    f"{len(data.seeded)} table(s) with every value kept; the previous "
                    f"release's {data.probes} INSERT/SELECT/UPDATE/DELETE worked"
                )
            else:
                parts.append("forward and backward OK")
            parts.append(f"audit: no error ({v.audit_warnings} warning(s))")
            if v.rehearsal is not None:
                parts.append(_rehearsed(v))
        lines.append(f"Verified{where}: " + "; ".join(parts) + ".")
    else:
        lines.append(f"Verification FAILED{where}; every file was restored:")
        for diff in v.state_differences:
            lines.append(f"  state differs from the models: {diff}")
        if v.import_error:
            lines.append("  the project does not import in a fresh process:")
            lines.extend(f"    {line}" for line in v.import_error.splitlines())
        for diff in v.fresh_differences:
            lines.append(f"  makemigrations --check (fresh process) would write: {diff}")
        if v.round_trip_error:
            lines.append(f"  migrating forward and back failed: {v.round_trip_error}")
        for error in v.data_errors:
            lines.append(f"  data: {error}")
        for error in v.audit_errors:
            lines.append(f"  audit error: {error}")
        for problem in v.rehearsal_problems:
            lines.append(f"  rehearsal: {problem}")
    if data is not None:
        for note in data.notes:
            lines.append(f"  data: {note}")
    for skipped in v.skipped:
        lines.append(f"  skipped: {skipped}")
    return lines


def _rehearsed(v: Any) -> str:
    """The rehearsal, passed: how much traffic got through, and its longest wait."""
    r = v.rehearsal
    return (
        f"under the previous release's traffic: {r.queries:,} queries while {r.migrations} "
        f"migration(s) ran on {r.rows:,} rows per table, none failed, longest wait "
        f"{v.rehearsal_longest_ms / 1000:.2f} s (threshold {r.threshold_s:g} s)"
    )
