"""The plan record: steps that must ship in a later release, kept next to the migrations.

``<app>/migrations/zero_downtime_plan.json`` (not a Python module, so Django's
migration loader ignores it) lists each pending step: the release it belongs to
(2 = the release after the one that wrote it), the strategy that rebuilds it,
a title for people, the migrations that must be deployed first, and the few
facts the strategy needs (table, column, SQL for the reverse...). Running
``plan_zero_downtime <app>`` again once the release before is deployed writes
the steps of the next release and removes them from the record; the file goes
away with its last entry. It is meant to be read in review and committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db.migrations.loader import MigrationLoader

from .errors import PlanError
from .model import PendingStep

RECORD_NAME = "zero_downtime_plan.json"

ABOUT = (
    "Steps of zero-downtime plans that must ship in a later release than the migrations "
    "that wrote them. Once the release before is deployed everywhere, `python manage.py "
    "plan_zero_downtime {app}` writes the next release's migrations and removes their "
    "entries here. Written by django-migration-guard; delete an entry to drop that step."
)


def migrations_dir(app_label: str) -> Path:
    """The folder of the app's migrations package."""
    import importlib

    module_name, _ = MigrationLoader.migrations_module(app_label)
    if module_name is None:
        raise PlanError(f"migrations of {app_label!r} are disabled (MIGRATION_MODULES)")
    module = importlib.import_module(module_name)
    paths = list(getattr(module, "__path__", []))
    if not paths:
        raise PlanError(f"cannot find the migrations folder of {app_label!r}")
    return Path(paths[0])


def record_path(app_label: str) -> Path:
    return migrations_dir(app_label) / RECORD_NAME


def read_record(path: Path) -> list[PendingStep]:
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [PendingStep.from_json(entry) for entry in data.get("pending", [])]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PlanError(
            f"{path} is not a valid plan record ({exc}); fix it or remove the broken entry."
        ) from exc


def render_record(app_label: str, pending: list[PendingStep]) -> str | None:
    """The record's text, or None when nothing is pending (the file is removed)."""
    if not pending:
        return None
    data: dict[str, Any] = {
        "about": ABOUT.format(app=app_label),
        "app_label": app_label,
        "pending": [p.as_json() for p in pending],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
