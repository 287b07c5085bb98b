"""An ignore that matches no finding."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..findings import Category, Finding, OperationRef, Severity
from .base import Rule

if TYPE_CHECKING:
    from ..collect import MigrationRecord
    from .base import RuleContext


class UnusedIgnore(Rule):
    """An ignore comment or ``migration_guard_ignore`` entry matches no finding.

    **What it flags.** ``# migration-guard: ignore[rule-id]`` on an operation,
    or ``migration_guard_ignore = ["rule-id"]`` on a Migration class, when no
    finding of that rule was reported there: the hazard is gone, the id is
    misspelt, or the comment sits on the wrong line.

    **Why it matters.** A stale ignore silences the next real finding at that
    place without anyone deciding so again.

    **Fix.** Remove the ignore, or correct the rule id (``migration-guard rules``
    lists them) or its line (the operation's own lines, or the line just above).
    """

    id = "unused-ignore"
    severity = Severity.INFO
    category = Category.CORRECTNESS
    only_existing_tables = False


def unused_ignores(
    record: MigrationRecord, used: set[tuple[int | None, str]], ctx: RuleContext
) -> Iterator[Finding]:
    rule = UnusedIgnore()
    if ctx.config.severity_for(rule.id, rule.severity) is None:
        return
    for rule_id in sorted(record.migration_ignores):
        if (None, rule_id) not in used:
            yield ctx.finding(
                rule,
                None,
                f"migration_guard_ignore lists {rule_id!r}, but no {rule_id} finding was reported "
                "in this migration.",
                "Remove it from migration_guard_ignore, or correct the rule id.",
            )
    for op in record.operations:
        for ignore in op.ignores:
            for rule_id in sorted(ignore.rules):
                if (op.index, rule_id) not in used:
                    yield ctx.finding(
                        rule,
                        op,
                        f"the ignore[{rule_id}] comment on line {ignore.line} matches no finding "
                        "of this operation.",
                        "Remove the comment, or correct the rule id or its line.",
                    )
    for ignore in record.source.stray_ignores:
        yield ctx.finding(
            rule,
            None,
            f"the ignore comment on line {ignore.line} is not on any operation's lines, so it "
            "ignores nothing.",
            "Move it onto the operation it is meant for (or the line just above it).",
        ).replace(
            operation=OperationRef(-1, "(ignore comment)", ignore.line, ""),
        )
