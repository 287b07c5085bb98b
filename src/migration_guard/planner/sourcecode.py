"""Read and edit migration files as source text, never losing what the author wrote.

* :func:`parse_migration_file` splits a migration into its operations (exact
  source text, with the comments above each), its ``dependencies`` and
  ``run_before`` lists, and its module-level statements (imports, functions,
  constants), each with the names it defines and uses.
* :func:`carried_code` picks the module-level code that carried-over operations
  need (a RunPython function, the constants and imports it uses), transitively.
* :func:`rewire_dependency` points a dependant migration at a new name, editing
  only the string that names the replaced migration.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import textwrap
import tokenize
from pathlib import Path
from typing import Any

from ..exceptions import MigrationLoadError
from ..source import read_text
from .model import SourceOp


@dataclasses.dataclass(frozen=True)
class ModuleStatement:
    text: str
    defines: frozenset[str]
    uses: frozenset[str]
    is_import: bool


@dataclasses.dataclass
class MigrationFile:
    path: Path
    text: str
    #: None when ``operations`` is not a literal list (built by code).
    operations: list[SourceOp] | None
    #: Lines inside ``dependencies = [...]``, indented 8 spaces, each ending with a comma.
    dependencies_source: str | None
    run_before_source: str | None
    statements: list[ModuleStatement]
    docstring: str | None
    #: Other class attributes of Migration (``initial = True``, audit ignores...), as source.
    class_attributes: list[str] = dataclasses.field(default_factory=list)


def _offsets(text: str) -> list[int]:
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def _segment(text: str, starts: list[int], node: Any) -> str:
    start = starts[node.lineno - 1] + _col(text, starts, node.lineno, node.col_offset)
    end_line = node.end_lineno or node.lineno
    end = starts[end_line - 1] + _col(text, starts, end_line, node.end_col_offset or 0)
    return text[start:end]


def _col(text: str, starts: list[int], line: int, byte_col: int) -> int:
    """ast columns are UTF-8 byte offsets; convert to a character offset."""
    line_text = text[starts[line - 1] : starts[line] if line < len(starts) else len(text)]
    return len(line_text.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def _names(node: ast.AST) -> frozenset[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
    return frozenset(out)


def _defines(node: ast.stmt) -> frozenset[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return frozenset({node.name})
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return frozenset((a.asname or a.name).split(".")[0] for a in node.names)
    out = set()
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                out.add(sub.id)
    return frozenset(out)


def _comment_lines_between(lines: list[str], first: int, last: int) -> list[str]:
    """Comment lines (1-based, inclusive range) that stand on their own."""
    out = []
    for number in range(first, last + 1):
        if 1 <= number <= len(lines):
            stripped = lines[number - 1].strip()
            if stripped.startswith("#"):
                out.append(stripped[1:].strip() if stripped.startswith("# ") else stripped[1:])
    return out


def _list_body(text: str, starts: list[int], value: ast.expr) -> str | None:
    if not isinstance(value, (ast.List, ast.Tuple)):
        return None
    lines = []
    for elt in value.elts:
        lines.append("        " + textwrap.dedent(_segment(text, starts, elt)).strip() + ",")
    return "\n".join(lines) + ("\n" if lines else "")


def parse_migration_file(path: Path) -> MigrationFile:
    text = read_text(path)
    if text is None:
        raise MigrationLoadError(f"cannot read {path}")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        raise MigrationLoadError(f"{path} does not parse: {exc}") from exc
    starts = _offsets(text)
    lines = text.splitlines()
    docstring = ast.get_docstring(tree)
    statements: list[ModuleStatement] = []
    operations: list[SourceOp] | None = None
    dependencies = run_before = None
    attributes: list[str] = []
    previous_end = 0
    for index, node in enumerate(tree.body):
        if (
            index == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            previous_end = node.end_lineno or node.lineno
            continue
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            operations, dependencies, run_before = _class_parts(text, starts, lines, node)
            attributes = _other_attributes(text, starts, node)
            previous_end = node.end_lineno or node.lineno
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            previous_end = node.end_lineno or node.lineno
            continue
        first = node.lineno
        decorators = getattr(node, "decorator_list", None)
        if decorators:
            first = min(d.lineno for d in decorators)
        comments = _comment_lines_between(lines, previous_end + 1, first - 1)
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        body = ast.unparse(node) if is_import else "\n".join(lines[first - 1 : node.end_lineno])
        if comments and not is_import:
            body = "\n".join(f"# {c}" if c else "#" for c in comments) + "\n" + body
        statements.append(
            ModuleStatement(
                text=body,
                defines=_defines(node),
                uses=_names(node) - (_defines(node) if is_import else frozenset()),
                is_import=is_import,
            )
        )
        previous_end = node.end_lineno or node.lineno
    return MigrationFile(
        path=path,
        text=text,
        operations=operations,
        dependencies_source=dependencies,
        run_before_source=run_before,
        statements=statements,
        docstring=docstring,
        class_attributes=attributes,
    )


#: Migration attributes the plan writes itself.
_OWN_ATTRIBUTES = {"dependencies", "operations", "run_before", "atomic", "replaces"}


def _other_attributes(text: str, starts: list[int], node: ast.ClassDef) -> list[str]:
    out = []
    for stmt in node.body:
        if not isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            continue
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        names = {t.id for t in targets if isinstance(t, ast.Name)}
        if names and not names & _OWN_ATTRIBUTES:
            column = _col(text, starts, stmt.lineno, stmt.col_offset)
            out.append(textwrap.dedent(" " * column + _segment(text, starts, stmt)))
    return out


def _class_parts(
    text: str, starts: list[int], lines: list[str], node: ast.ClassDef
) -> tuple[list[SourceOp] | None, str | None, str | None]:
    operations: list[SourceOp] | None = None
    dependencies = run_before = None
    for stmt in node.body:
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            continue
        target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            continue
        if target.id == "dependencies":
            dependencies = _list_body(text, starts, stmt.value)
        elif target.id == "run_before":
            run_before = _list_body(text, starts, stmt.value)
        elif target.id == "operations" and isinstance(stmt.value, (ast.List, ast.Tuple)):
            operations = []
            previous = stmt.value.lineno
            for elt in stmt.value.elts:
                first_line = elt.lineno
                comments = _comment_lines_between(lines, previous + 1, first_line - 1)
                segment = _segment(text, starts, elt)
                column = _col(text, starts, elt.lineno, elt.col_offset)
                source = textwrap.dedent(" " * column + segment)
                operations.append(
                    SourceOp(text=source, comment="\n".join(comments), names=_names(elt))
                )
                previous = elt.end_lineno or elt.lineno
    return operations, dependencies, run_before


def carried_code(parsed: MigrationFile, used: set[str]) -> tuple[list[str], list[str]]:
    """(imports, other statements) of the module that ``used`` names need, in file order."""
    needed: set[int] = set()
    names = set(used)
    changed = True
    while changed:
        changed = False
        for index, statement in enumerate(parsed.statements):
            if index in needed or not (statement.defines & names):
                continue
            needed.add(index)
            names |= statement.uses
            changed = True
    imports = [
        _pruned_import(s, names)
        for i, s in enumerate(parsed.statements)
        if i in needed and s.is_import
    ]
    code = [s.text for i, s in enumerate(parsed.statements) if i in needed and not s.is_import]
    return imports, code


def _pruned_import(statement: ModuleStatement, names: set[str]) -> str:
    """The import statement without the names nobody uses (``import a.b`` kept whole)."""
    node = ast.parse(statement.text).body[0]
    if isinstance(node, ast.ImportFrom):
        kept = [a for a in node.names if (a.asname or a.name) in names]
        if kept and len(kept) < len(node.names):
            node.names = kept
            return ast.unparse(node)
    return statement.text


def rewire_dependency(text: str, app_label: str, old: str, new: str) -> str:
    """``text`` with ``(app_label, old)`` in Migration.dependencies/run_before renamed ``new``."""
    tree = ast.parse(text)
    starts = _offsets(text)
    edits: list[tuple[int, int, str]] = []
    for node in tree.body:
        if not (isinstance(node, ast.ClassDef) and node.name == "Migration"):
            continue
        for stmt in node.body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
                continue
            target = stmt.targets[0]
            if not (isinstance(target, ast.Name) and target.id in ("dependencies", "run_before")):
                continue
            if not isinstance(stmt.value, (ast.List, ast.Tuple)):
                continue
            for elt in stmt.value.elts:
                if not (isinstance(elt, ast.Tuple) and len(elt.elts) == 2):
                    continue
                first, second = elt.elts
                if (
                    isinstance(first, ast.Constant)
                    and first.value == app_label
                    and isinstance(second, ast.Constant)
                    and second.value == old
                ):
                    original = _segment(text, starts, second)
                    quote = original[0] if original[:1] in "'\"" else "'"
                    start = starts[second.lineno - 1] + _col(
                        text, starts, second.lineno, second.col_offset
                    )
                    end_line = second.end_lineno or second.lineno
                    end = starts[end_line - 1] + _col(
                        text, starts, end_line, second.end_col_offset or 0
                    )
                    edits.append((start, end, f"{quote}{new}{quote}"))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def preferred_quote(text: str) -> str:
    """The quote character most string literals of ``text`` use."""
    counts = {"'": 0, '"': 0}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING:
                body = tok.string.lstrip("rRbBuUfF")
                if body[:1] in counts and not body.startswith(("'''", '"""')):
                    counts[body[0]] += 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return '"' if counts['"'] > counts["'"] else "'"


def requote(source: str, quote: str) -> str:
    """A simple string literal rewritten with ``quote`` (other sources unchanged)."""
    try:
        value = ast.literal_eval(source)
    except (ValueError, SyntaxError):
        return source
    if not isinstance(value, str) or "'" in value or '"' in value or "\\" in value:
        return source
    if not (source.startswith("'") or source.startswith('"')):
        return source
    return f"{quote}{value}{quote}"
