"""Edits of models.py through a concrete syntax tree: one keyword on a field, one Meta option.

libcst reads the file into a tree that keeps every character (comments, blank
lines, quotes, trailing commas), so an edit changes exactly the node it means
and nothing else: a comment that contains a comma stays a comment, a field
written over several lines gets its new keyword on a line of its own.

Only model field constructors are edited: the call's name is looked up in the
models module as Python sees it (``models.CharField``, an imported
``CharField``, a subclass of ``Field``). A field built by something else (a
helper function ``flag = flag_field()``, a variable) is refused with the field
named and what to write by hand: adding a keyword to a call the planner does
not understand could break it.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import libcst as cst

from .model import ModelEdit
from .sourcecode import preferred_quote, requote


@dataclasses.dataclass
class EditResult:
    text: str
    applied: list[ModelEdit]
    #: Edits that could not be placed, with what to do by hand.
    refused: list[str]


def models_path(app_label: str, model: str) -> Path | None:
    """The file defining the model class (models.py or a module of a models package)."""
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


def models_module(app_label: str, model: str) -> ModuleType | None:
    """The imported module defining the model class (its names resolve field calls)."""
    from django.apps import apps

    try:
        cls = apps.get_model(app_label, model)
    except LookupError:
        return None
    return sys.modules.get(cls.__module__)


def apply_edits(
    text: str, edits: list[ModelEdit], namespace: dict[str, Any] | None = None
) -> EditResult:
    """``text`` with ``edits`` applied; ``namespace``: the module's globals, to tell field
    constructors from other calls (None: any call whose name ends in ``Field`` is one)."""
    applied: list[ModelEdit] = []
    refused: list[str] = []
    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        reason = f"the file does not parse: {str(exc).splitlines()[0]}"
        return EditResult(text, [], [_refusal(edit, reason) for edit in edits])
    quote = preferred_quote(text)
    for edit in edits:
        try:
            new = _apply(module, edit, quote, namespace)
        except _Refused as exc:
            refused.append(_refusal(edit, str(exc)))
            continue
        if new.code != module.code:
            applied.append(edit)
        module = new
    return EditResult(text=module.code, applied=applied, refused=refused)


def _refusal(edit: ModelEdit, reason: str) -> str:
    where = f"{edit.model}.{edit.field}" if edit.field else f"{edit.model}.Meta"
    what = f"{edit.option}={edit.source}" if edit.field else f"{edit.option} = {edit.source}"
    return f"{where}: add {what} by hand ({reason})"


class _Refused(Exception):
    pass


def _apply(
    module: cst.Module, edit: ModelEdit, quote: str, namespace: dict[str, Any] | None
) -> cst.Module:
    index, cls = _find_class(module, edit.model)
    if edit.field is None:
        new_cls = _meta_option(cls, edit, quote)
    else:
        new_cls = _field_keyword(cls, edit, quote, namespace)
    body = list(module.body)
    body[index] = new_cls
    return module.with_changes(body=body)


def _find_class(module: cst.Module, name: str) -> tuple[int, cst.ClassDef]:
    for index, node in enumerate(module.body):
        if isinstance(node, cst.ClassDef) and node.name.value == name:
            return index, node
    raise _Refused(f"class {name} is not defined at the top of the file")


def _class_body(cls: cst.ClassDef) -> list[cst.BaseStatement]:
    if not isinstance(cls.body, cst.IndentedBlock):
        raise _Refused(f"class {cls.name.value} is written on one line")
    return list(cls.body.body)


# -- a keyword on a field ---------------------------------------------------------------


def _assigned(statement: cst.BaseStatement, name: str) -> cst.BaseExpression | None:
    """The value ``statement`` assigns to ``name`` (``name = value``, ``name: T = value``)."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Assign):
        for target in small.targets:
            if isinstance(target.target, cst.Name) and target.target.value == name:
                return small.value
    if (
        isinstance(small, cst.AnnAssign)
        and isinstance(small.target, cst.Name)
        and small.target.value == name
    ):
        return small.value
    return None


def _dotted(node: cst.BaseExpression) -> list[str] | None:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr.value]
    return None


def _is_field_class(call: cst.Call, namespace: dict[str, Any] | None) -> bool:
    parts = _dotted(call.func)
    if not parts:
        return False
    if namespace is None:
        return parts[-1].endswith("Field") or parts[-1] in ("ForeignKey", "OneToOneField")
    from django.db.models import Field

    value: Any = namespace.get(parts[0])
    for part in parts[1:]:
        value = getattr(value, part, None)
    return isinstance(value, type) and issubclass(value, Field)


def _field_keyword(
    cls: cst.ClassDef, edit: ModelEdit, quote: str, namespace: dict[str, Any] | None
) -> cst.ClassDef:
    body = _class_body(cls)
    assert edit.field is not None
    for index, statement in enumerate(body):
        value = _assigned(statement, edit.field)
        if value is None:
            continue
        if not isinstance(value, cst.Call):
            raise _Refused(f"{edit.field} is not assigned a field constructor call")
        if not _is_field_class(value, namespace):
            called = ".".join(_dotted(value.func) or ["<expression>"])
            raise _Refused(
                f"{edit.field} is built by {called}(), which is not a model field class: the "
                "planner does not edit calls it cannot see into"
            )
        new_call = _with_keyword(value, edit, quote)
        new_statement = statement.deep_replace(value, new_call)
        assert isinstance(new_statement, cst.BaseStatement)
        body[index] = new_statement
        return cls.with_changes(body=cls.body.with_changes(body=body))
    raise _Refused(f"no `{edit.field} = <Field>(...)` in class {cls.name.value}")


def _with_keyword(call: cst.Call, edit: ModelEdit, quote: str) -> cst.Call:
    args = list(call.args)
    keywords = {a.keyword.value: i for i, a in enumerate(args) if a.keyword is not None}
    value: cst.BaseExpression
    if edit.copy_from and edit.copy_from in keywords:
        value = args[keywords[edit.copy_from]].value.deep_clone()
    else:
        try:
            value = cst.parse_expression(requote(edit.source, quote))
        except cst.ParserSyntaxError as exc:  # pragma: no cover - sources come from Django
            raise _Refused(f"{edit.source} is no Python expression") from exc
    if edit.option in keywords:
        index = keywords[edit.option]
        args[index] = args[index].with_changes(value=value)
        return call.with_changes(args=args)
    new = cst.Arg(
        value=value,
        keyword=cst.Name(edit.option),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    if not args:
        return call.with_changes(args=[new])
    last = args[-1]
    if last.star:
        raise _Refused(f"the call ends with {last.star}{'args' if last.star == '*' else 'kwargs'}")
    # Between two arguments: what separates the last two, else what precedes the first.
    if len(args) > 1 and isinstance(args[-2].comma, cst.Comma):
        between = args[-2].comma.whitespace_after
    elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
        between = call.whitespace_before_args
    else:
        between = cst.SimpleWhitespace(" ")
    if isinstance(last.comma, cst.Comma):
        after_last = last.comma.whitespace_after
        new = new.with_changes(comma=last.comma.with_changes(whitespace_after=_bare(after_last)))
        args[-1] = last.with_changes(
            comma=last.comma.with_changes(whitespace_after=_keep_comment(between, after_last))
        )
    else:
        after_last = last.whitespace_after_arg
        new = new.with_changes(whitespace_after_arg=_bare(after_last))
        args[-1] = last.with_changes(
            comma=cst.Comma(
                whitespace_before=cst.SimpleWhitespace(""),
                whitespace_after=_keep_comment(between, after_last),
            ),
            whitespace_after_arg=cst.SimpleWhitespace(""),
        )
    args.append(new)
    return call.with_changes(args=args)


def _bare(whitespace: Any) -> Any:
    """``whitespace`` without the comment at the end of its first line."""
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.with_changes(first_line=cst.TrailingWhitespace())
    return whitespace


def _keep_comment(between: Any, original: Any) -> Any:
    """``between``, keeping the comment that followed the last argument on its line."""
    if isinstance(original, cst.ParenthesizedWhitespace) and isinstance(
        between, cst.ParenthesizedWhitespace
    ):
        return between.with_changes(first_line=original.first_line)
    return between


# -- an option in Meta ------------------------------------------------------------------------


def _meta_option(cls: cst.ClassDef, edit: ModelEdit, quote: str) -> cst.ClassDef:
    body = _class_body(cls)
    try:
        value = cst.parse_expression(requote(edit.source, quote))
    except cst.ParserSyntaxError as exc:  # pragma: no cover - sources come from Django
        raise _Refused(f"{edit.source} is no Python expression") from exc
    line = cst.SimpleStatementLine(
        body=[cst.Assign(targets=[cst.AssignTarget(target=cst.Name(edit.option))], value=value)]
    )
    for index, statement in enumerate(body):
        if not (isinstance(statement, cst.ClassDef) and statement.name.value == "Meta"):
            continue
        meta_body = _class_body(statement)
        for meta_index, meta_statement in enumerate(meta_body):
            old = _assigned(meta_statement, edit.option)
            if old is not None:
                replaced = meta_statement.deep_replace(old, value)
                assert isinstance(replaced, cst.BaseStatement)
                meta_body[meta_index] = replaced
                break
        else:
            only_pass = len(meta_body) == 1 and _is_pass(meta_body[0])
            if only_pass:
                meta_body = [line]
            else:
                meta_body.append(line)
        body[index] = statement.with_changes(body=statement.body.with_changes(body=meta_body))
        return cls.with_changes(body=cls.body.with_changes(body=body))
    # No Meta: one after the last field (assignment) of the class body.
    meta = cst.ClassDef(
        name=cst.Name("Meta"),
        body=cst.IndentedBlock(body=[line]),
        leading_lines=[cst.EmptyLine(indent=False)],
    )
    fields = [i for i, s in enumerate(body) if isinstance(s, cst.SimpleStatementLine)]
    at = fields[-1] + 1 if fields else 0
    body.insert(at, meta)
    if at < len(body) - 1:
        follower = body[at + 1]
        if not getattr(follower, "leading_lines", True):
            body[at + 1] = follower.with_changes(leading_lines=[cst.EmptyLine(indent=False)])
    return cls.with_changes(body=cls.body.with_changes(body=body))


def _is_pass(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Pass)
    )
