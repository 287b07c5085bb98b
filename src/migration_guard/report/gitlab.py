"""``--format gitlab``: a GitLab Code Quality report (``artifacts: reports: codequality:``).

A JSON array of Code Climate issues; GitLab shows them in the merge request's
Code Quality widget and diff. The ``fingerprint`` is the one SARIF and the
baseline use, so GitLab tells new findings from those already on the target
branch.
"""

from __future__ import annotations

import json
from typing import Any

from ..baseline import fingerprinted, location_path
from ..findings import Finding, Severity
from ..results import AuditReport
from . import RenderOptions, register

#: Code Quality severities: blocker, critical, major, minor, info.
SEVERITIES = {Severity.ERROR: "critical", Severity.WARNING: "major", Severity.INFO: "info"}


def _description(finding: Finding) -> str:
    text = finding.message.strip()
    if finding.fix:
        text += f" Fix: {finding.fix.strip()}"
    return text


def issues(report: AuditReport) -> list[dict[str, Any]]:
    out = []
    for result, finding, fp in fingerprinted(report):
        out.append(
            {
                "type": "issue",
                "description": _description(finding),
                "check_name": finding.rule,
                "categories": ["Bug Risk"],
                "fingerprint": fp,
                "severity": SEVERITIES[finding.severity],
                "location": {
                    "path": location_path(result),
                    "lines": {"begin": finding.line or 1},
                },
            }
        )
    return out


@register("gitlab")
def render_gitlab(report: AuditReport, options: RenderOptions) -> str:
    return json.dumps(issues(report), indent=2, ensure_ascii=False) + "\n"
