"""Minimal, careful edits of models.py: one keyword on a field, one option in Meta.

The syntax tree finds the place (the class, the field's call, its last argument,
the Meta class); the edit is a text insertion there, so everything else in the
file (comments, formatting, quotes) stays as it was. An edit that cannot be
placed safely is refused with a message saying what to write by hand.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

from .model import ModelEdit
from .sourcecode import _col, _offsets, preferred_quote, requote


@dataclasses.dataclass
class EditResult:
    text: str
    applied: list[ModelEdit]
    #: Edits that could not be placed, with what to do by hand.
    refused: list[str]


def models_path(app_label: str, model: str) -> Path | None:
    """The file defining the model class (models.py or a module of a models package)."""
    import inspect

    from django.apps import apps

    try:
        cls = apps.get_model(app_label, model)
    except LookupError:
        return None
    try:
        source = inspect.getsourcefile(cls)
    except TypeError:
        return None
    return Path(source) if source else None


def apply_edits(text: str, edits: list[ModelEdit]) -> EditResult:
    applied, refused = [], []
    for edit in edits:
        try:
            new = _apply(text, edit)
        except _Refused as exc:
            refused.append(
                f"{edit.model}.{edit.field or 'Meta'}: add {edit.option}={edit.source} by hand "
                f"({exc})"
            )
            continue
        if new != text:
            applied.append(edit)
        text = new
    return EditResult(text=text, applied=applied, refused=refused)


class _Refused(Exception):
    pass


def _find_class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise _Refused(f"class {name} is not defined at the top of the file")


def _apply(text: str, edit: ModelEdit) -> str:
    tree = ast.parse(text)
    cls = _find_class(tree, edit.model)
    quote = preferred_quote(text)
    if edit.field is None:
        return _meta_option(text, cls, edit, quote)
    return _field_keyword(text, cls, edit, quote)


def _position(text: str, starts: list[int], line: int, col: int) -> int:
    return starts[line - 1] + _col(text, starts, line, col)


def _field_keyword(text: str, cls: ast.ClassDef, edit: ModelEdit, quote: str) -> str:
    call = None
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == edit.field for t in stmt.targets
        ):
            call = stmt.value
    if not isinstance(call, ast.Call):
        raise _Refused(f"no `{edit.field} = <Field>(...)` in class {edit.model}")
    starts = _offsets(text)
    source = edit.source
    keywords = {k.arg: k for k in call.keywords if k.arg}
    if edit.copy_from and edit.copy_from in keywords:
        node = keywords[edit.copy_from].value
        source = text[
            _position(text, starts, node.lineno, node.col_offset) : _position(
                text, starts, node.end_lineno or node.lineno, node.end_col_offset or 0
            )
        ]
    else:
        source = requote(source, quote)
    if edit.option in keywords:
        node = keywords[edit.option].value
        start = _position(text, starts, node.lineno, node.col_offset)
        end = _position(text, starts, node.end_lineno or node.lineno, node.end_col_offset or 0)
        return text[:start] + source + text[end:]
    args: list[Any] = [*call.args, *call.keywords]
    if not args:
        # Field() -> Field(option=value)
        end = _position(text, starts, call.end_lineno or call.lineno, call.end_col_offset or 0)
        close = text.rindex(")", 0, end)
        return text[:close] + f"{edit.option}={source}" + text[close:]
    last = max(args, key=lambda a: (a.end_lineno or 0, a.end_col_offset or 0))
    last_end = _position(text, starts, last.end_lineno or last.lineno, last.end_col_offset or 0)
    close = _position(text, starts, call.end_lineno or call.lineno, call.end_col_offset or 0) - 1
    between = text[last_end:close]
    multiline = (call.end_lineno or call.lineno) > (last.end_lineno or last.lineno)
    if multiline:
        first_arg = min(args, key=lambda a: (a.lineno, a.col_offset))
        if first_arg.lineno == call.lineno:
            # Arguments start on the call's line: keep going on the last argument's line.
            return text[:last_end] + f", {edit.option}={source}" + text[last_end:]
        line_start = starts[first_arg.lineno - 1]
        indent = text[
            line_start : line_start + _col(text, starts, first_arg.lineno, first_arg.col_offset)
        ]
        comma = "," in between.split("\n", 1)[0]
        if comma:
            insert_at = last_end + between.index(",") + 1
            return text[:insert_at] + f"\n{indent}{edit.option}={source}," + text[insert_at:]
        return text[:last_end] + f",\n{indent}{edit.option}={source}," + text[last_end:]
    return text[:last_end] + f", {edit.option}={source}" + text[last_end:]


def _meta_option(text: str, cls: ast.ClassDef, edit: ModelEdit, quote: str) -> str:
    starts = _offsets(text)
    source = requote(edit.source, quote)
    lines = text.splitlines(keepends=True)
    meta = next((n for n in cls.body if isinstance(n, ast.ClassDef) and n.name == "Meta"), None)
    if meta is not None:
        for stmt in meta.body:
            if isinstance(stmt, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == edit.option for t in stmt.targets
            ):
                value = stmt.value
                start = _position(text, starts, value.lineno, value.col_offset)
                end = _position(
                    text, starts, value.end_lineno or value.lineno, value.end_col_offset or 0
                )
                return text[:start] + source + text[end:]
        first = meta.body[0]
        indent = " " * first.col_offset
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
            at_line = first.end_lineno or first.lineno  # after the docstring
        elif isinstance(first, ast.Pass):
            line = first.lineno
            return (
                "".join(lines[: line - 1])
                + f"{indent}{edit.option} = {source}\n"
                + "".join(lines[line:])
            )
        else:
            at_line = meta.body[-1].end_lineno or meta.body[-1].lineno
        return (
            "".join(lines[:at_line])
            + f"{indent}{edit.option} = {source}\n"
            + "".join(lines[at_line:])
        )
    # No Meta: add one after the last field (assignment) of the class body.
    body_indent = " " * cls.body[0].col_offset
    assigns = [n for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign))]
    if assigns:
        at_line = assigns[-1].end_lineno or assigns[-1].lineno
    else:
        first = cls.body[0]
        at_line = (first.end_lineno or first.lineno) if isinstance(first, ast.Expr) else cls.lineno
    block = f"\n{body_indent}class Meta:\n{body_indent}    {edit.option} = {source}\n"
    return "".join(lines[:at_line]) + block + "".join(lines[at_line:])
