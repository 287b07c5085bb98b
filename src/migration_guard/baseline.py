"""Adopting on a project with history: record today's findings, report only new ones.

``migration_audit --write-baseline FILE`` records the fingerprint of every
finding; ``--baseline FILE`` hides the findings whose fingerprint it lists and
says how many it hid. The fingerprint is the one SARIF (``partialFingerprints``)
and the GitLab Code Quality report use: a hash of what identifies a hazard
(rule, app, migration, operation index, table), never of line numbers or
wording, so editing a comment above a migration or rewording a rule's message
keeps it stable.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .exceptions import ConfigurationError
from .findings import Finding
from .results import AuditReport, MigrationResult

#: Version of the fingerprint recipe; part of SARIF's ``partialFingerprints`` key.
FINGERPRINT_VERSION = 1
#: Version of the baseline file format.
BASELINE_VERSION = 1


def fingerprint(finding: Finding, occurrence: int = 0) -> str:
    """A stable id of the hazard ``finding`` reports.

    ``occurrence`` tells apart findings that agree on every identifying part
    (the second one of a rule on the same operation and table is 1, ...).
    """
    index = finding.operation.index if finding.operation is not None else None
    parts: list[Any] = [
        FINGERPRINT_VERSION,
        finding.rule,
        finding.app_label,
        finding.migration,
        index,
        finding.table or "",
    ]
    if occurrence:
        parts.append(occurrence)
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def fingerprinted(report: AuditReport) -> Iterator[tuple[MigrationResult, Finding, str]]:
    """Every finding of ``report`` in report order, with its migration and fingerprint."""
    seen: dict[str, int] = {}
    for result in report.migrations:
        for finding in result.findings:
            base = fingerprint(finding)
            occurrence = seen.get(base, 0)
            seen[base] = occurrence + 1
            yield result, finding, (base if occurrence == 0 else fingerprint(finding, occurrence))


def location_path(result: MigrationResult) -> str:
    """The migration's file relative to the repository root (its conventional path
    when the audit could not tell)."""
    return result.path or f"{result.app_label}/migrations/{result.name}.py"


# -- the baseline file ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Baseline:
    #: fingerprint -> its entry (rule, migration, table: for people reading the file).
    entries: dict[str, dict[str, Any]]
    source: str = "baseline"

    def __contains__(self, fp: str) -> bool:
        return fp in self.entries


def baseline_of(report: AuditReport) -> dict[str, Any]:
    """The baseline document recording every finding of ``report`` (sorted, stable)."""
    entries = []
    for result, finding, fp in fingerprinted(report):
        entry: dict[str, Any] = {
            "fingerprint": fp,
            "rule": finding.rule,
            "migration": f"{result.app_label}.{result.name}",
        }
        if finding.operation is not None and finding.operation.index >= 0:
            entry["operation"] = finding.operation.index
        if finding.table:
            entry["table"] = finding.table
        entries.append(entry)
    entries.sort(
        key=lambda e: (e["migration"], e.get("operation", -1), e["rule"], e["fingerprint"])
    )
    return {
        "tool": "django-migration-guard",
        "version": BASELINE_VERSION,
        "comment": "Findings accepted when migration-guard was adopted; "
        "`migration_audit --baseline FILE` reports only findings not listed here.",
        "findings": entries,
    }


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_baseline(report: AuditReport, path: str | Path) -> Baseline:
    """Write the baseline of ``report`` to ``path``; return it as loaded."""
    document = baseline_of(report)
    try:
        Path(path).write_text(dumps(document), encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the baseline to {path}: {exc.strerror or exc}"
        ) from None
    return _parse(document, str(path))


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file written by ``--write-baseline``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(
            f"baseline file {path} does not exist: create it with --write-baseline {path}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the baseline {path}: {exc.strerror or exc}"
        ) from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"baseline {path} is not valid JSON ({exc}); write it again with --write-baseline"
        ) from None
    return _parse(document, str(path))


def _parse(document: Any, source: str) -> Baseline:
    if not isinstance(document, dict) or not isinstance(document.get("findings"), list):
        raise ConfigurationError(
            f"baseline {source} has no 'findings' list: write it again with --write-baseline"
        )
    version = document.get("version")
    if version != BASELINE_VERSION:
        raise ConfigurationError(
            f"baseline {source} has version {version!r}; this migration-guard reads version "
            f"{BASELINE_VERSION}: write it again with --write-baseline"
        )
    entries: dict[str, dict[str, Any]] = {}
    for number, entry in enumerate(document["findings"]):
        fp = entry.get("fingerprint") if isinstance(entry, dict) else None
        if not isinstance(fp, str) or not fp:
            raise ConfigurationError(f"baseline {source}: findings[{number}] has no fingerprint")
        entries[fp] = entry
    return Baseline(entries=entries, source=source)


def apply_baseline(report: AuditReport, baseline: Baseline) -> AuditReport:
    """``report`` without the findings ``baseline`` lists, with a note saying how many
    were hidden (and how many baseline entries no longer match anything)."""
    keep: dict[tuple[str, str], list[Finding]] = {}
    hidden = 0
    matched: set[str] = set()
    for result, finding, fp in fingerprinted(report):
        if fp in baseline:
            hidden += 1
            matched.add(fp)
        else:
            keep.setdefault(result.key, []).append(finding)
    migrations = tuple(
        dataclasses.replace(m, findings=tuple(keep.get(m.key, ()))) for m in report.migrations
    )
    notes = list(report.notes)
    notes.append(
        f"{hidden} finding(s) hidden by the baseline {baseline.source}"
        + ("" if hidden == 0 else "; only findings not in it are reported")
        + "."
    )
    audited = {(m.app_label, m.name) for m in report.migrations}
    stale = [
        fp
        for fp, entry in baseline.entries.items()
        if fp not in matched and _migration_key(entry) in audited
    ]
    if stale:
        notes.append(
            f"{len(stale)} baseline entr{'y' if len(stale) == 1 else 'ies'} for the audited "
            "migrations no longer match a finding (fixed or changed): refresh the baseline "
            "with --write-baseline."
        )
    return dataclasses.replace(report, migrations=migrations, notes=tuple(notes))


def _migration_key(entry: dict[str, Any]) -> tuple[str, str] | None:
    migration = entry.get("migration")
    if not isinstance(migration, str) or "." not in migration:
        return None
    app_label, _, name = migration.partition(".")
    return (app_label, name)


def process(report: AuditReport, *, baseline: Baseline | None, write: str | None) -> AuditReport:
    """What the command's ``--baseline`` / ``--write-baseline`` options do to a report.

    ``write``: record every finding of ``report`` there, then apply that new
    baseline (the run reports nothing new and exits 0). Else ``baseline``
    (loaded before the audit, so a bad file fails fast): hide what it lists.
    """
    if write:
        return apply_baseline(report, write_baseline(report, write))
    if baseline is not None:
        return apply_baseline(report, baseline)
    return report
