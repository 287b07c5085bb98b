"""What the migration file itself says: where each operation stands, and ignores.

Line numbers come from the file's syntax tree (``operations = [...]`` inside
``class Migration``); per-line ignores from its comments::

    migrations.AddIndex(...),  # migration-guard: ignore[add-index-non-concurrent] table is tiny

A comment applies to the operation whose lines it sits on, or to the operation
that starts on the next line.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Any

IGNORE_COMMENT = re.compile(
    r"#\s*migration-guard:\s*ignore\[(?P<ids>[^\]]*)\](?P<reason>.*)$", re.IGNORECASE
)
#: Rule ids that were retired, and the rule that took their findings over: ignores and
#: configuration naming the old id keep working.
RETIRED_RULES = {"observed-blocking-lock": "lock-timeout-missing"}


def current_id(rule_id: str) -> str:
    return RETIRED_RULES.get(rule_id, rule_id)


#: The attribute a Migration class may set to ignore rules for the whole migration.
IGNORE_ATTRIBUTE = "migration_guard_ignore"


@dataclasses.dataclass(frozen=True)
class Ignore:
    rules: frozenset[str]
    reason: str
    line: int


@dataclasses.dataclass(frozen=True)
class OperationSpan:
    line: int
    end_line: int


@dataclasses.dataclass(frozen=True)
class MigrationSource:
    path: Path | None
    spans: tuple[OperationSpan | None, ...]
    #: Ignores by operation index.
    ignores: dict[int, tuple[Ignore, ...]]
    #: Line of ``operations =`` (fallback location for findings).
    operations_line: int | None
    class_line: int | None
    #: Ignore comments that sit on no operation.
    stray_ignores: tuple[Ignore, ...] = ()

    def line_of(self, index: int) -> int | None:
        if 0 <= index < len(self.spans) and self.spans[index] is not None:
            return self.spans[index].line  # type: ignore[union-attr]
        return self.operations_line or self.class_line


def migration_path(migration: Any) -> Path | None:
    module = sys.modules.get(type(migration).__module__)
    filename = getattr(module, "__file__", None)
    if not filename:
        return None
    path = Path(filename)
    if path.suffix in (".pyc", ".pyo"):
        source = path.with_suffix(".py")
        return source if source.exists() else None
    return path


def read_text(path: Path) -> str | None:
    """The file's text; undecodable bytes are replaced, never fatal."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding, errors="replace")
    except (SyntaxError, LookupError):
        return data.decode("utf-8", errors="replace")


def _operations_list(
    tree: ast.Module,
) -> tuple[ast.List | ast.Tuple | None, int | None, int | None]:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for stmt in node.body:
                targets: list[ast.expr] = []
                value: ast.expr | None = None
                if isinstance(stmt, ast.Assign):
                    targets, value = stmt.targets, stmt.value
                elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                    targets, value = [stmt.target], stmt.value
                if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets):
                    if isinstance(value, (ast.List, ast.Tuple)):
                        return value, stmt.lineno, node.lineno
                    return None, stmt.lineno, node.lineno
            return None, None, node.lineno
    return None, None, None


def _comments(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                out.append((tok.start[0], tok.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        for number, line in enumerate(text.splitlines(), start=1):
            if "#" in line:
                out.append((number, line[line.index("#") :]))
    return out


def parse_ignore(comment: str, line: int) -> Ignore | None:
    match = IGNORE_COMMENT.search(comment)
    if not match:
        return None
    ids = frozenset(
        current_id(part.strip()) for part in match.group("ids").split(",") if part.strip()
    )
    return Ignore(rules=ids, reason=match.group("reason").strip(), line=line)


def read_migration_source(migration: Any) -> MigrationSource:
    path = migration_path(migration)
    count = len(getattr(migration, "operations", []) or [])
    empty = MigrationSource(path, (None,) * count, {}, None, None)
    if path is None:
        return empty
    text = read_text(path)
    if text is None:
        return empty
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return empty
    ops, ops_line, class_line = _operations_list(tree)
    spans: list[OperationSpan | None] = [None] * count
    if ops is not None and len(ops.elts) == count:
        for i, elt in enumerate(ops.elts):
            spans[i] = OperationSpan(elt.lineno, elt.end_lineno or elt.lineno)
    ignores: dict[int, list[Ignore]] = {}
    stray: list[Ignore] = []
    # Tokenizing is the costly part: only files that can hold an ignore comment need it.
    marked = "migration-guard" in text.lower()
    for line, comment in _comments(text) if marked else ():
        ignore = parse_ignore(comment, line)
        if ignore is None:
            continue
        owner = None
        for i, span in enumerate(spans):
            if span and span.line <= line <= span.end_line:
                owner = i
                break
        if owner is None:
            for i, span in enumerate(spans):
                if span and span.line == line + 1:
                    owner = i
                    break
        if owner is None:
            stray.append(ignore)
        else:
            ignores.setdefault(owner, []).append(ignore)
    return MigrationSource(
        path,
        tuple(spans),
        {k: tuple(v) for k, v in ignores.items()},
        ops_line,
        class_line,
        tuple(stray),
    )


def class_ignores(migration: Any) -> frozenset[str]:
    value = getattr(migration, IGNORE_ATTRIBUTE, ()) or ()
    if isinstance(value, str):
        value = [value]
    return frozenset(current_id(str(v)) for v in value)
