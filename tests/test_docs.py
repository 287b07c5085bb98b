"""Rule documentation: every rule is documented, and docs/rules/ is in step with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from migration_guard.docsgen import drift
from migration_guard.rules import registry

REPO = Path(__file__).resolve().parent.parent
ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@pytest.mark.parametrize("rule_id", sorted(registry()))
def test_rule_is_documented(rule_id):
    rule = registry()[rule_id]
    assert ID.match(rule_id), "ids are stable kebab-case names of the hazard"
    assert rule.title() and rule.title() != rule_id, "the docstring's first line is the title"
    doc = rule.documentation()
    assert len(doc) > 200, "the docstring documents the rule"
    assert "**What it flags.**" in doc
    assert any(s in doc for s in ("**Safe alternative.**", "**Fix.**")), "it says what to do"


def test_docs_rules_are_generated_from_docstrings():
    problems = drift(REPO / "docs" / "rules")
    assert not problems, (
        "docs/rules/ drifted from the rule docstrings; run "
        "`python -m migration_guard.docsgen`:\n" + "\n".join(problems)
    )
