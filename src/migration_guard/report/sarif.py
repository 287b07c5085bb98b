"""``--format sarif``: SARIF 2.1.0 for GitHub code scanning and other SARIF viewers.

``tool.driver.rules[]`` holds the rules the results refer to, documented from
the rule's docstring (the same text as ``docs/rules/<id>.md``). Each result
points at the migration file and the operation's line, and carries the
fingerprint shared with the GitLab report and the baseline, so code scanning
keeps an alert open across unrelated edits of the file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .. import rules as rules_pkg
from ..baseline import FINGERPRINT_VERSION, fingerprinted, location_path
from ..findings import Finding, Severity
from ..results import FAILED, AuditReport
from . import RenderOptions, register
from . import _traffic as traffic_words
from .escaping import uri_reference, url_path

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
#: Where the project lives; rule documentation is under docs/rules/<id>.md.
PROJECT_URL = "https://github.com/django-migration-guard/django-migration-guard"
DOCS_BASE_URL = f"{PROJECT_URL}/blob/main/docs/rules/"
#: Key of our fingerprint in ``partialFingerprints`` (versioned with the recipe).
FINGERPRINT_KEY = f"migrationGuard/v{FINGERPRINT_VERSION}"

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}


def help_uri(rule_id: str) -> str:
    return f"{DOCS_BASE_URL}{url_path(rule_id)}.md"


def rule_descriptor(rule_id: str) -> dict[str, Any]:
    """SARIF ``reportingDescriptor`` of a rule, from its docstring."""
    cls = rules_pkg.registry().get(rule_id)
    if cls is None:
        # A rule of a plugin that is not installed where the JSON report is rendered.
        return {
            "id": rule_id,
            "shortDescription": {"text": rule_id},
            "helpUri": help_uri(rule_id),
        }
    title = cls.title()
    documentation = cls.documentation() or title
    return {
        "id": rule_id,
        "name": _camel(rule_id),
        "shortDescription": {"text": title},
        "fullDescription": {"text": documentation},
        "help": {"text": documentation, "markdown": f"**{title}**\n\n{documentation}"},
        "helpUri": help_uri(rule_id),
        "defaultConfiguration": {"level": LEVELS[Severity(cls.severity)]},
        "properties": {"category": str(cls.category), "tags": ["migrations", str(cls.category)]},
    }


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("-"))


def _message(finding: Finding) -> str:
    text = finding.message.strip()
    if finding.fix:
        text += f"\n\nFix: {finding.fix.strip()}"
    if finding.plan_command:
        text += f"\n\nWrite the safe version: {finding.plan_command}"
    for traffic in finding.traffic:  # --rehearse
        lines = [traffic_words.waits(traffic), *traffic_words.failures(traffic)]
        text += "\n\nRehearsal: " + "; ".join(lines)
    return text


def _result(finding: Finding, path: str, fp: str, rule_index: int) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": finding.line or 1}
    properties: dict[str, Any] = {
        "category": finding.category.value,
        "evidence": finding.evidence.value,
        "migration": f"{finding.app_label}.{finding.migration}",
    }
    if finding.operation is not None and finding.operation.index >= 0:
        properties["operation"] = finding.operation.index
        properties["operationDescription"] = finding.operation.description
    if finding.table:
        properties["table"] = finding.table
    if finding.locks:
        properties["locks"] = [lock.to_dict() for lock in finding.locks]
    if finding.traffic:
        properties["traffic"] = [t.to_dict() for t in finding.traffic]
    return {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": LEVELS[finding.severity],
        "message": {"text": _message(finding)},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri_reference(path)},
                    "region": region,
                }
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: fp},
        "properties": properties,
    }


def sarif_log(report: AuditReport) -> dict[str, Any]:
    """The SARIF log of ``report`` as a JSON-ready dict."""
    rule_ids = sorted({f.rule for f in report.findings})
    index = {rule_id: n for n, rule_id in enumerate(rule_ids)}
    results = [
        _result(finding, location_path(result), fp, index[finding.rule])
        for result, finding, fp in fingerprinted(report)
    ]
    notifications = [{"level": "note", "message": {"text": note}} for note in report.notes]
    notifications += [
        {"level": "error", "message": {"text": f"{m.app_label}.{m.name} failed: {m.error}"}}
        for m in report.migrations
        if m.status == FAILED and m.error
    ]
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "django-migration-guard",
                "version": report.tool_version,
                "informationUri": PROJECT_URL,
                "rules": [rule_descriptor(rule_id) for rule_id in rule_ids],
            }
        },
        "invocations": [invocation],
        "results": results,
        "columnKind": "unicodeCodePoints",
        "properties": {
            "change": report.change,
            "traced": report.traced,
            "failOn": report.fail_on.value,
        },
    }
    if _SEMVER.match(report.tool_version):
        run["tool"]["driver"]["semanticVersion"] = report.tool_version
    if report.postgres is not None:
        run["properties"]["postgresMajor"] = report.postgres.major
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


@register("sarif")
def render_sarif(report: AuditReport, options: RenderOptions) -> str:
    return json.dumps(sarif_log(report), indent=2, ensure_ascii=False) + "\n"
