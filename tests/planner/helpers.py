"""Small helpers shared by the planner test modules."""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from .conftest import SAMPLE, Project

#: An INSERT of the previous release into blog_post: it knows none of the new columns.
OLD_POST_INSERT = (
    "INSERT INTO blog_post (author_id, title, slug, summary, body, status, word_count, "
    "view_count, created_at, updated_at) VALUES ((SELECT min(id) FROM accounts_user), "
    "'old release', 'old-release-{n}', '', 'body', 'draft', 1, 0, now(), now())"
)


def old_post_insert(n: int) -> str:
    return OLD_POST_INSERT.format(n=n)


@dataclasses.dataclass
class Scenario:
    """One planner run and its proof."""

    project: Project
    app: str
    written: list[str]
    output: str
    files: dict[str, str]
    proof: dict[str, Any] | None = None


def collect_files(project: Project, app: str, written: list[str]) -> dict[str, str]:
    """Generated migrations, the planner's models.py diff and the plan record (golden files)."""
    files = {f"{name}.py": project.read(f"{app}/migrations/{name}.py") for name in written}
    for module in ("models.py",):
        original = project.models_before.get(app, (SAMPLE / app / module).read_text())
        current = project.read(f"{app}/{module}")
        if original != current:
            diff = difflib.unified_diff(
                original.splitlines(keepends=True),
                current.splitlines(keepends=True),
                fromfile=f"a/{app}/{module}",
                tofile=f"b/{app}/{module}",
            )
            files[f"{module[:-3]}.diff"] = "".join(diff)
    record = project.root / app / "migrations" / "zero_downtime_plan.json"
    if record.exists():
        files["zero_downtime_plan.json"] = record.read_text()
    return files


def plan(project: Project, app: str, *args: str, expect: int = 0) -> tuple[list[str], str]:
    """Run plan_zero_downtime; return the new migration names and the output."""
    before = project.migrations(app)
    project.models_before[app] = project.read(f"{app}/models.py")
    proc = project.plan(app, *args, expect=expect)
    return project.new_migrations(app, before), proc.stdout
