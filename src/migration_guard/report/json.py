"""``--format json``: the versioned contract documented in docs/json-schema.md."""

from __future__ import annotations

import json

from ..results import AuditReport
from . import RenderOptions, register


@register("json")
def render_json(report: AuditReport, options: RenderOptions) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
