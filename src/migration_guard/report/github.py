"""``--format github``: GitHub Actions workflow commands that annotate the pull request.

One line per finding, ``::error file=...,line=...,title=...::message`` (``::warning``,
``::notice`` for info), escaped the way the Actions runner unescapes them.
``migration_audit`` also prints them after the text report when it runs in
GitHub Actions (``GITHUB_ACTIONS=true``), unless ``--no-github-annotations``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..baseline import location_path
from ..findings import Finding, Severity
from ..results import AuditReport, MigrationResult
from . import RenderOptions, register

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """Escape a command's message (after ``::``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a command property value (``file=``, ``title=``...)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(finding: Finding, result: MigrationResult) -> str:
    props = [f"file={escape_property(location_path(result))}"]
    if finding.line:
        props.append(f"line={finding.line}")
    props.append(f"title={escape_property(f'{finding.rule} ({result.app_label}.{result.name})')}")
    message = finding.message.strip()
    if finding.fix:
        message += f"\nFix: {finding.fix.strip()}"
    if finding.plan_command:
        message += f"\nWrite the safe version: {finding.plan_command}"
    return f"::{COMMANDS[finding.severity]} {','.join(props)}::{escape_data(message)}"


@register("github")
def render_github(report: AuditReport, options: RenderOptions) -> str:
    lines = [annotation(f, m) for m in report.migrations for f in m.findings]
    return "".join(line + "\n" for line in lines)


def automatic(env: Mapping[str, str], formats: Iterable[str], disabled: bool) -> bool:
    """True when annotations go out alongside the requested reports without being asked
    for: in GitHub Actions, not turned off, and not already requested as a format."""
    return env.get("GITHUB_ACTIONS") == "true" and not disabled and "github" not in set(formats)


def on_stdout(pairs: Iterable[tuple[str, str]]) -> bool:
    """Where automatic annotations go, given the run's (format, destination) pairs:
    after the text report on stdout, else on stderr (the Actions runner reads
    workflow commands from both) so that a JSON, SARIF or Markdown report on
    stdout stays clean."""
    on_out = [fmt for fmt, destination in pairs if destination == "-"]
    return not on_out or on_out == ["text"]
