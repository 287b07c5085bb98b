"""docs/reliability.md names only tests that exist (the matrix cannot rot silently)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
MATRIX = TESTS.parent / "docs" / "reliability.md"
REFERENCE = re.compile(r"((?:\w+/)*test_\w+\.py)?::(test_\w+)")


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}


def test_every_test_the_matrix_names_exists():
    text = MATRIX.read_text(encoding="utf-8")
    named: list[tuple[str, str]] = []
    for line in text.splitlines():
        current = None
        for match in REFERENCE.finditer(line):
            current = match.group(1) or current
            assert current is not None, f"no file for ::{match.group(2)} in: {line}"
            named.append((current, match.group(2)))
    assert len(named) > 40
    missing = [
        f"{file}::{name}"
        for file, name in named
        if not (TESTS / file).is_file() or name not in _functions(TESTS / file)
    ]
    assert missing == [], missing


def test_every_bad_input_case_is_in_the_matrix():
    from .test_reliability_input import CASES, CONFIG_CASES

    text = MATRIX.read_text(encoding="utf-8")
    for case in CASES:
        assert f"[{case}]" in text, case
    for case in CONFIG_CASES:
        assert f"`{case}`" in text, case
