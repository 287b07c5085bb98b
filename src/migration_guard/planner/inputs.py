"""What the plan starts from: model changes not yet in a migration, or an existing migration.

* ``plan_zero_downtime app``: Django's makemigrations autodetector compares the
  migration history's state with the models (``ProjectState.from_apps``), with a
  non-interactive questioner that never guesses a value for existing rows.
* ``plan_zero_downtime app migration``: an existing migration that is not
  applied yet; its operations, their source text and the module code they use.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import django
from django.apps import apps as global_apps
from django.db import migrations
from django.db.migrations.autodetector import MigrationAutodetector
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.questioner import NonInteractiveMigrationQuestioner
from django.db.migrations.state import ProjectState
from django.db.models import NOT_PROVIDED

from .. import discovery
from ..discovery import Key, _find_migration, read_applied
from ..exceptions import SelectionError
from ..source import migration_path
from .errors import PlanError
from .model import SourceOp
from .sourcecode import MigrationFile, parse_migration_file


@dataclasses.dataclass
class Original:
    """The migration being replaced."""

    key: Key
    path: Path
    parsed: MigrationFile
    atomic: bool
    #: Migrations (any app) that depend on it: they will depend on the last new one.
    dependants: list[tuple[Key, Path]]
    #: Migrations that list it in run_before: they will name the first new one.
    runs_before: list[tuple[Key, Path]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class PlanInput:
    app_label: str
    operations: list[Any]
    #: Source of each operation when it comes from a file.
    sources: list[SourceOp | None]
    before: ProjectState
    #: Dependencies of the first generated migration (keys) or their source lines.
    dependencies: list[tuple[str, str]]
    dependency_source: str | None
    #: Number of the first generated migration.
    number: int
    description: str
    original: Original | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Model renames the autodetector was told to assume.
    renames: list[str] = dataclasses.field(default_factory=list)
    #: (model, field or None, kind) that migrations after the replaced one change again
    #: (see :func:`later_changes`).
    later: frozenset[tuple[str, str | None, str]] = frozenset()


class PlannerQuestioner(NonInteractiveMigrationQuestioner):
    """Never invents a value for existing rows; says what to write in the model instead."""

    def __init__(self, app_label: str, assume_renames: bool) -> None:
        self.messages: list[str] = []
        self.renames: list[str] = []
        self.assume_renames = assume_renames
        super().__init__(
            specified_apps={app_label}, dry_run=True, verbosity=1, log=self.messages.append
        )

    def ask_not_null_addition(self, field_name: str, model_name: str) -> Any:
        raise PlanError(
            f"{model_name}.{field_name} is a new NOT NULL field without a default, so existing "
            "rows have no value for it. Give it one in the model: default=<constant> (one "
            "step, the database keeps the DEFAULT), default=<callable> (added nullable, "
            "backfilled in batches, then made NOT NULL), "
            + ("db_default=..., " if django.VERSION >= (5, 0) else "")
            + "or null=True."
        )

    def ask_auto_now_add_addition(self, field_name: str, model_name: str) -> Any:
        if django.VERSION >= (5, 0):
            advice = (
                "Add db_default=Now() (django.db.models.functions) to the field (one "
                "catalog-only step), or make it null=True."
            )
        else:  # no db_default before Django 5.0
            advice = (
                "Make it null=True, or add it with default=django.utils.timezone.now (added "
                "nullable, backfilled in batches, then made NOT NULL) and make it auto_now_add "
                "in a later change (no SQL)."
            )
        raise PlanError(
            f"{model_name}.{field_name} is a new auto_now_add field: existing rows need a "
            f"value. {advice}"
        )

    def ask_not_null_alteration(self, field_name: str, model_name: str) -> Any:
        self.messages.append(
            f"{model_name}.{field_name} becomes NOT NULL without a default: rows that are NULL "
            "make the validation fail; give the field a default to have them filled first."
        )
        return NOT_PROVIDED

    def ask_rename(
        self, model_name: str, old_name: str, new_name: str, field_instance: Any
    ) -> bool:
        if self.assume_renames:
            self.renames.append(
                f"assumed {model_name}.{old_name} was renamed to {new_name} (same definition); "
                "pass --no-renames if it is a new field and the old one goes"
            )
        return self.assume_renames

    def ask_rename_model(self, old_model_state: Any, new_model_state: Any) -> bool:
        if self.assume_renames:
            self.renames.append(
                f"assumed model {old_model_state.name} was renamed to {new_model_state.name}; "
                "pass --no-renames if it is a new model and the old one goes"
            )
        return self.assume_renames

    def ask_unique_callable_default_addition(self, field_name: str, model_name: str) -> Any:
        return None  # the backfill computes one value per row


def _option_removal_of(operation: Any) -> str | None:
    """The model whose index, constraint or *_together ``operation`` removes, else None."""
    if isinstance(operation, (migrations.RemoveIndex, migrations.RemoveConstraint)):
        return str(operation.model_name_lower)
    together = (migrations.AlterUniqueTogether, migrations.AlterIndexTogether)
    if isinstance(operation, together) and not operation.option_value:
        return str(operation.name_lower)
    return None


def _concerns(operation: Any, model_name_lower: str) -> bool:
    return model_name_lower in (
        getattr(operation, "model_name_lower", None),
        getattr(operation, "name_lower", None),
    )


def fold_into_deleted_models(
    operations: list[Any], sources: list[SourceOp | None]
) -> tuple[list[Any], list[SourceOp | None], list[Any]]:
    """Drop the removals of a model's indexes, constraints and *_together that come right
    before the model's DeleteModel (the autodetector brings them forward: unique_together
    and index_together on every Django version, Meta.indexes and Meta.constraints since
    Django 6.0). The model's removal takes them along: its table (with its indexes and
    constraints) stays for the previous release and goes in one piece, and Django's state
    after DeleteModel is the same. Returns the operations, their sources, and the dropped
    operations.
    """
    dropped: set[int] = set()
    for index, operation in enumerate(operations):
        if not isinstance(operation, migrations.DeleteModel):
            continue
        model = operation.name_lower
        for earlier in range(index - 1, -1, -1):
            if _option_removal_of(operations[earlier]) == model:
                dropped.add(earlier)
            elif _concerns(operations[earlier], model):
                break
    keep = [i for i in range(len(operations)) if i not in dropped]
    return (
        [operations[i] for i in keep],
        [sources[i] for i in keep],
        [operations[i] for i in sorted(dropped)],
    )


def check_app(loader: MigrationLoader, app_label: str) -> None:
    try:
        discovery.check_app(
            loader,
            app_label,
            no_migrations=(
                f" folder: run makemigrations {app_label} for its first migration (a new "
                "table needs no zero-downtime plan)"
            ),
        )
    except SelectionError as exc:
        raise PlanError(str(exc)) from None


def number_of(name: str) -> int | None:
    match = re.match(r"^(\d+)_", name)
    return int(match.group(1)) if match else None


def next_number(loader: MigrationLoader, app_label: str) -> int:
    numbers = [number_of(n) or 0 for a, n in loader.disk_migrations if a == app_label]
    return max(numbers, default=0) + 1


def from_models(
    loader: MigrationLoader, app_label: str, *, assume_renames: bool = True
) -> PlanInput:
    """The app's model changes that no migration holds yet."""
    questioner = PlannerQuestioner(app_label, assume_renames)
    autodetector = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(global_apps), questioner
    )
    changes = autodetector.changes(
        graph=loader.graph, trim_to_apps={app_label}, convert_apps={app_label}
    )
    others = sorted(a for a in changes if a != app_label)
    if others:
        raise PlanError(
            f"the changes of {app_label!r} need migrations of {', '.join(others)} first: run "
            f"plan_zero_downtime (or makemigrations) for {', '.join(others)}, then for {app_label}."
        )
    migrations_ = changes.get(app_label, [])
    operations: list[Any] = []
    dependencies: list[tuple[str, str]] = []
    names = {m.name for m in migrations_}
    for migration in migrations_:
        operations.extend(migration.operations)
        for raw in migration.dependencies:
            dep = (str(raw[0]), str(raw[1]))
            if dep[0] == app_label and dep[1] in names:
                continue
            if dep not in dependencies:
                dependencies.append(dep)
    number = (number_of(migrations_[0].name) if migrations_ else None) or next_number(
        loader, app_label
    )
    operations, sources, _folded = fold_into_deleted_models(operations, [None] * len(operations))
    return PlanInput(
        app_label=app_label,
        operations=operations,
        sources=sources,
        before=loader.project_state(),
        dependencies=dependencies,
        dependency_source=None,
        number=number,
        description=f"model changes of {app_label} not yet in a migration",
        notes=list(questioner.messages),
        renames=list(questioner.renames),
    )


def from_migration(
    loader: MigrationLoader, app_label: str, name: str, *, database: str
) -> PlanInput:
    """An existing migration, to be replaced by its safe sequence."""
    try:
        key = _find_migration(loader, app_label, name)
    except SelectionError as exc:
        raise PlanError(str(exc)) from None
    migration = loader.graph.nodes[key]
    if getattr(migration, "replaces", None):
        raise PlanError(
            f"{key[0]}.{key[1]} is a squashed migration: plan the change before squashing, or "
            "write a new migration for it."
        )
    notes: list[str] = []
    _check_not_applied(key, database, notes)
    path = migration_path(migration)
    if path is None or path.suffix != ".py":
        raise PlanError(f"cannot find the source file of {key[0]}.{key[1]}")
    parsed = parse_migration_file(path)
    if parsed.operations is None or len(parsed.operations) != len(migration.operations):
        raise PlanError(
            f"{path.name}: operations is not a literal list, so its source cannot be carried "
            "over exactly; write the list out, then plan again."
        )
    parents = sorted(p.key for p in loader.graph.node_map[key].parents)
    if parents:
        before = loader.project_state(nodes=parents, at_end=True)
    else:
        before = ProjectState(real_apps=loader.unmigrated_apps)
    dependants: list[tuple[Key, Path]] = []
    runs_before: list[tuple[Key, Path]] = []
    # Every migration on disk: those a squashed migration replaces are checked too.
    for other_key, other in loader.disk_migrations.items():
        if other_key == key:
            continue
        other_path = migration_path(other)
        if other_path is None:
            continue
        if key in {tuple(d) for d in other.dependencies}:
            dependants.append((other_key, other_path))
        if key in {tuple(r) for r in (other.run_before or [])}:
            runs_before.append((other_key, other_path))
    number = number_of(key[1]) or next_number(loader, app_label)
    later = later_changes(loader, key)
    operations, sources, folded = fold_into_deleted_models(
        list(migration.operations), list(parsed.operations)
    )
    notes.extend(
        f"{operation.describe()}: goes with the model, whose removal keeps its table (indexes "
        "and constraints included) for the previous release and drops it in one piece."
        for operation in folded
    )
    return PlanInput(
        app_label=key[0],
        operations=operations,
        sources=sources,
        before=before,
        dependencies=[(str(d[0]), str(d[1])) for d in migration.dependencies],
        dependency_source=parsed.dependencies_source,
        number=number,
        description=f"{key[0]}.{key[1]}",
        original=Original(
            key=key,
            path=path,
            parsed=parsed,
            atomic=bool(migration.atomic),
            dependants=sorted(dependants),
            runs_before=sorted(runs_before),
        ),
        notes=notes,
        later=later,
    )


def later_changes(loader: MigrationLoader, key: Key) -> frozenset[tuple[str, str | None, str]]:
    """What the migrations after ``key`` (in its app) change again (see :func:`changes_of`)."""
    operations: list[Any] = []
    for other in loader.graph.backwards_plan(key):  # key and every migration after it
        if other == key or other[0] != key[0] or other not in loader.graph.nodes:
            continue
        operations.extend(loader.graph.nodes[other].operations)
    return changes_of(operations)


def changes_of(operations: list[Any]) -> frozenset[tuple[str, str | None, str]]:
    """What ``operations`` change: (model, field, kind) for a field ("alter": AlterField,
    RenameField; "remove": RemoveField), (model, None, kind) for the whole model ("remove":
    DeleteModel, "rename": RenameModel, "table": AlterModelTable)."""
    out: set[tuple[str, str | None, str]] = set()
    stack = list(operations)
    while stack:
        op = stack.pop()
        if isinstance(op, migrations.SeparateDatabaseAndState):
            stack.extend(op.state_operations)
        elif isinstance(op, migrations.DeleteModel):
            out.add((op.name_lower, None, "remove"))
        elif isinstance(op, migrations.AlterModelTable):
            out.add((op.name_lower, None, "table"))
        elif isinstance(op, migrations.RenameModel):
            out.add((op.old_name_lower, None, "rename"))
        elif isinstance(op, migrations.RenameField):
            out.add((op.model_name_lower, op.old_name_lower, "alter"))
        elif isinstance(op, migrations.AlterField):
            out.add((op.model_name_lower, op.name_lower, "alter"))
        elif isinstance(op, migrations.RemoveField):
            out.add((op.model_name_lower, op.name_lower, "remove"))
    return frozenset(out)


def _check_not_applied(key: Key, database: str, notes: list[str]) -> None:
    try:
        applied = read_applied(database)
    except Exception as exc:  # no database, not PostgreSQL, no permission...
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = reason.split(": ", 1)[-1] if reason.startswith("cannot read") else reason
        reason = reason if len(reason) <= 120 else reason[:117] + "..."
        notes.append(
            f"could not check whether {key[0]}.{key[1]} is applied on database {database!r} "
            f"({reason}); replace it only if no database has applied it."
        )
        return
    if key in applied:
        raise PlanError(
            f"{key[0]}.{key[1]} is already applied on database {database!r}: an applied "
            "migration cannot be replaced. Unapply it first "
            f"(python manage.py migrate {key[0]} <previous>), or plan the next change instead."
        )
