"""Generate docs/rules/ from the rules' docstrings (the single source of their docs).

    python -m migration_guard.docsgen            # rewrite docs/rules/
    python -m migration_guard.docsgen --check    # exit 1 when docs/rules/ drifted

A test runs the check, so the pages cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .rules import registry
from .rules.base import Rule

HEADER = "<!-- Generated from the rule's docstring by `python -m migration_guard.docsgen`. -->\n"


def rule_page(rule: type[Rule]) -> str:
    facts = [
        f"- **Id:** `{rule.id}`",
        f"- **Severity:** {rule.severity.value}",
        f"- **Category:** {rule.category.value}",
    ]
    if rule.only_existing_tables:
        facts.append(
            "- **Tables created earlier in the same change:** not flagged (no readers yet)"
        )
    if rule.predicts is not None:
        seen = []
        if rule.predicts.lock:
            from .pglocks import sql_name

            seen.append(f"{sql_name(rule.predicts.lock)} lock")
        if rule.predicts.rewrite:
            seen.append("a table rewrite")
        if rule.predicts.scan:
            seen.append("a full scan")
        facts.append(
            "- **Checked by the trace:** expects "
            + ", ".join(seen)
            + "; confirmed findings say `observed`, contradicted ones are downgraded"
        )
    if rule.plannable:
        facts.append("- **Fix written by:** `manage.py plan_zero_downtime <app> <migration>`")
    facts.append(
        f"- **Silence:** `# migration-guard: ignore[{rule.id}] reason` on the operation, "
        f'or `migration_guard_ignore = ["{rule.id}"]` on the Migration class'
    )
    return (
        f"{HEADER}\n# {rule.id}\n\n{rule.title()}\n\n"
        + "\n".join(facts)
        + "\n\n"
        + rule.documentation().strip()
        + "\n"
    )


def index_page(rules: dict[str, type[Rule]]) -> str:
    lines = [
        HEADER,
        "# Rules",
        "",
        "Every rule, with its default severity. Change a severity or turn a rule off in",
        '`MIGRATION_GUARD = {"rules": {"rule-id": "warning"}}` (or `"off"`), or in',
        "`[tool.migration_guard.rules]` of pyproject.toml.",
        "",
        "| rule | severity | category | what |",
        "|---|---|---|---|",
    ]
    for rule_id, rule in sorted(rules.items()):
        title = rule.title().replace("|", "\\|")
        lines.append(
            f"| [`{rule_id}`]({rule_id}.md) | {rule.severity.value} | {rule.category.value} "
            f"| {title} |"
        )
    return "\n".join(lines) + "\n"


def expected_files() -> dict[str, str]:
    rules = registry()
    files = {f"{rule_id}.md": rule_page(rule) for rule_id, rule in rules.items()}
    files["README.md"] = index_page(rules)
    return files


def drift(dest: Path) -> list[str]:
    """What differs between ``dest`` and the docstrings (empty when in step)."""
    problems = []
    expected = expected_files()
    for name, text in sorted(expected.items()):
        path = dest / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path} differs from the rule's docstring")
    if dest.is_dir():
        for path in sorted(dest.glob("*.md")):
            if path.name not in expected:
                problems.append(f"{path} documents no rule")
    return problems


def write(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    expected = expected_files()
    for name, text in expected.items():
        (dest / name).write_text(text, encoding="utf-8")
    for path in dest.glob("*.md"):
        if path.name not in expected:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", nargs="?", default="docs/rules", type=Path)
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    args = parser.parse_args(argv)
    if args.check:
        problems = drift(args.dest)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    write(args.dest)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
