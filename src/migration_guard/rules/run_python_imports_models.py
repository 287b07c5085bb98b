"""RunPython code that uses the current model classes instead of the historical ones."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import textwrap
import types
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..findings import Category, Finding, Severity
from ._operations import callable_name, database_operations
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord

#: Attributes through which code queries or inspects a model class.
_MODEL_USE = frozenset({"objects", "_default_manager", "_base_manager", "_meta"})


def _is_model(obj: Any) -> bool:
    from django.db import models

    return isinstance(obj, type) and issubclass(obj, models.Model) and obj is not models.Model


def _is_get_user_model(obj: Any) -> bool:
    return getattr(obj, "__name__", "") == "get_user_model" and getattr(
        obj, "__module__", ""
    ).startswith("django.contrib.auth")


def _function_node(func: types.FunctionType) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _import(module: str) -> Any:
    with contextlib.suppress(Exception):
        return importlib.import_module(module)
    return None


def _local_imports(node: ast.AST, package: str | None) -> dict[str, Any]:
    """Names bound by ``import``/``from ... import`` inside the function."""
    out: dict[str, Any] = {}
    for child in ast.walk(node):
        if isinstance(child, ast.ImportFrom):
            name = "." * child.level + (child.module or "")
            try:
                absolute = importlib.util.resolve_name(name, package) if child.level else name
            except (ImportError, ValueError):
                continue
            module = _import(absolute)
            for alias in child.names:
                value = getattr(module, alias.name, None) if module is not None else None
                if value is None:
                    value = _import(f"{absolute}.{alias.name}")
                out[alias.asname or alias.name] = value
        elif isinstance(child, ast.Import):
            for alias in child.names:
                if alias.asname:
                    out[alias.asname] = _import(alias.name)
                else:
                    root = alias.name.split(".")[0]
                    _import(alias.name)
                    out[root] = _import(root)
    return out


def _stored_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    """Arguments and names the function assigns: they shadow module globals."""
    args = node.args
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs) if a is not None}
    for extra in (args.vararg, args.kwarg):
        if extra is not None:
            names.add(extra.arg)
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
            names.add(child.id)
    return names


class _Uses(ast.NodeVisitor):
    """Model classes a function body queries, and same-module functions it calls."""

    def __init__(self, namespace: dict[str, Any], shadowed: set[str]) -> None:
        self.namespace = namespace
        self.shadowed = shadowed
        self.models: list[str] = []
        self.calls: list[types.FunctionType] = []

    def _resolve(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Name):
            if node.id in self.shadowed:
                return None
            return self.namespace.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            if base is None or _is_model(base):
                return None  # attributes of a model are not models
            return getattr(base, node.attr, None)
        return None

    def _hit(self, obj: Any) -> None:
        name = f"{obj._meta.app_label}.{obj.__name__}"
        if name not in self.models:
            self.models.append(name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _MODEL_USE:
            obj = self._resolve(node.value)
            if _is_model(obj):
                self._hit(obj)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = self._resolve(node.func)
        if _is_model(func):
            self._hit(func)
        elif _is_get_user_model(func):
            if "get_user_model()" not in self.models:
                self.models.append("get_user_model()")
        elif isinstance(func, types.FunctionType):
            self.calls.append(func)
        for arg in node.args:
            obj = self._resolve(arg)
            if _is_model(obj):
                self._hit(obj)
        self.generic_visit(node)


def current_models_used(func: Any) -> list[str]:
    """``app_label.Model`` of the current model classes ``func`` (and helpers it calls in
    its own module) queries, instantiates or passes around; ``get_user_model()`` too."""
    found: list[str] = []
    seen: set[int] = set()
    todo = [func]
    while todo:
        current = todo.pop()
        if not isinstance(current, types.FunctionType) or id(current) in seen:
            continue
        seen.add(id(current))
        node = _function_node(current)
        if node is None:
            continue
        imported = _local_imports(node, current.__globals__.get("__package__"))
        namespace = {**current.__globals__, **imported}
        shadowed = _stored_names(node) - set(imported)
        visitor = _Uses(namespace, shadowed)
        visitor.visit(node)
        found.extend(m for m in visitor.models if m not in found)
        todo.extend(
            f for f in visitor.calls if f.__module__ == func.__module__ and id(f) not in seen
        )
    return found


class RunPythonImportsModels(Rule):
    """RunPython code uses the current model classes instead of the historical models.

    **What it flags.** A function run by ``RunPython`` (forwards or reverse,
    or a helper of the same module it calls) that queries, creates or passes
    around a model class imported from the application (``from blog.models
    import Post``, at the top of the migration or inside the function), or
    calls ``get_user_model()``::

        from blog.models import Post

        def fill_slugs(apps, schema_editor):
            for post in Post.objects.all():  # the model of today's code
                ...

    **Lock.** None: this is about correctness. The imported class is the model
    of the code being deployed, not of the schema at this point of the
    migration history. When the migrations run on a database that is behind
    (a new environment, the test database, a deploy that spans several
    releases), the class may have fields whose columns do not exist yet
    (``column ... does not exist``), lack fields the table still requires, or
    bring custom managers and ``save()`` logic that later changes or removal
    break. ``apps.get_model()`` returns the model as it was at this migration.

    **Safe alternative.** Get every model from the ``apps`` argument::

        def fill_slugs(apps, schema_editor):
            Post = apps.get_model("blog", "Post")
            for post in Post.objects.all():
                ...

    **References.** Django, "Data migrations" (historical models):
    https://docs.djangoproject.com/en/stable/topics/migrations/#data-migrations ;
    "Historical models":
    https://docs.djangoproject.com/en/stable/topics/migrations/#historical-models
    """

    id = "run-python-imports-models"
    severity = Severity.WARNING
    category = Category.CORRECTNESS
    only_existing_tables = False
    predicts = None

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        for func, role in self._functions(op):
            used = current_models_used(func)
            if not used:
                continue
            names = ", ".join(used)
            first = used[0]
            get = (
                "apps.get_model(settings.AUTH_USER_MODEL)"
                if first == "get_user_model()"
                else "apps.get_model({!r}, {!r})".format(*first.split(".", 1))
            )
            yield ctx.finding(
                self,
                op,
                f"RunPython {role} {callable_name(func)} uses the current model class "
                f"{names} instead of the historical model: on a database whose schema is "
                "behind the code (a new environment, the test database, a deploy spanning "
                "several releases) its fields, managers and methods do not match the tables "
                "at this point of the history, and the migration fails or writes wrong data.",
                f"Get the model from the apps argument ({get}) and drop the import.",
            )

    @staticmethod
    def _functions(op: OperationRecord) -> Iterator[tuple[Any, str]]:
        from django.db.migrations.operations.special import RunPython

        for operation in database_operations(op.operation):
            if not isinstance(operation, RunPython):
                continue
            for func, role in ((operation.code, "code"), (operation.reverse_code, "reverse_code")):
                if func is not None and func is not RunPython.noop:
                    yield func, role
