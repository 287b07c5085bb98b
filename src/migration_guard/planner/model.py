"""The planner's value objects: what strategies produce and what the writer renders.

A strategy turns one operation into a *chain* of :class:`Step` objects. A step is
one unit of deploy work (add the column, backfill it, enforce NOT NULL...) that
belongs to one release and one kind of migration (atomic or not). The scheduler
packs the steps of all chains into :class:`PlannedMigration` objects; steps of a
later release become :class:`PendingStep` entries of the plan record instead.

Operations inside a step are *specs*, not Django objects, because a generated
file mixes what Django's writer serializes (model operations) with what only
source text can say (a RunPython function defined in the file, ``RunSQL.noop``,
an operation carried over verbatim from the migration being replaced).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# -- operation specs ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DjangoOp:
    """A Django operation object, rendered by Django's OperationWriter."""

    operation: Any
    comment: str = ""


@dataclasses.dataclass(frozen=True)
class RunSQLSpec:
    """``migrations.RunSQL``; ``reverse=None`` renders ``migrations.RunSQL.noop``."""

    #: One statement, several (one RunSQL, executed in order), or None for noop.
    sql: str | tuple[str, ...] | None
    reverse: str | tuple[str, ...] | None = None
    comment: str = ""
    #: Tables it takes a lock that blocks traffic on (ACCESS EXCLUSIVE, SHARE...).
    locks: frozenset[str] = frozenset()
    #: Tables it scans or rewrites under a weak lock (VALIDATE) or none.
    scans: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class RunPythonSpec:
    """``migrations.RunPython(code, reverse_code)``; names of functions defined in the file."""

    code: str
    reverse: str | None = None
    comment: str = ""


@dataclasses.dataclass(frozen=True)
class SeparateSpec:
    """``migrations.SeparateDatabaseAndState`` with specs inside."""

    state: tuple[OpSpec, ...]
    database: tuple[OpSpec, ...]
    comment: str = ""


@dataclasses.dataclass(frozen=True)
class SourceOp:
    """An operation carried over verbatim from the migration being replaced."""

    text: str
    #: Comment lines that preceded it in the original operations list.
    comment: str = ""
    #: Names the text uses (for carrying module-level code along).
    names: frozenset[str] = frozenset()


OpSpec = DjangoOp | RunSQLSpec | RunPythonSpec | SeparateSpec | SourceOp


# -- steps ------------------------------------------------------------------------------

#: Phases, in the order a release deploys them. Used in headers and names.
PHASES = ("change", "expand", "build", "backfill", "enforce", "switch", "contract")


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """Module-level code a step needs (a function, a constant), with its imports."""

    name: str
    text: str
    imports: frozenset[str] = frozenset()


@dataclasses.dataclass
class Step:
    """One unit of deploy work of a chain."""

    strategy: str
    #: Short slug used in migration names, e.g. ``add_post_uid``.
    slug: str
    phase: str
    #: One line: what the step does.
    title: str
    #: Why this step exists and why it is safe (header paragraph).
    why: str
    operations: list[OpSpec]
    atomic: bool = True
    #: 1 = deploy now; 2 = the release after, and so on.
    release: int = 1
    #: Must not share a transaction (a migration) with the chain's previous step.
    separate: bool = False
    #: RunPython data migration: never shares a migration with DDL.
    data: bool = False
    #: Touches nothing known (carried-over RunSQL/RunPython): keeps its place in order.
    opaque: bool = False
    #: Tables whose lock blocking traffic the step takes, and tables it scans.
    locks: frozenset[str] = frozenset()
    scans: frozenset[str] = frozenset()
    #: Models (``app.model``) whose state the step changes or reads.
    models: frozenset[str] = frozenset()
    code: tuple[CodeBlock, ...] = ()
    imports: frozenset[str] = frozenset()
    #: For steps of a later release: how to rebuild them from the plan record.
    resume: Mapping[str, Any] | None = None
    #: Extra lines for the header (recovery advice...).
    notes: tuple[str, ...] = ()
    #: PostgreSQL major version the SQL needs at least (verification skips older servers).
    needs_major: int = 12
    #: (table, column) pairs whose NULLs the step fills in existing rows (a backfill).
    fills: frozenset[tuple[str, str]] = frozenset()
    #: What an operation carried over as written may change in existing rows: (table,
    #: column), (table, "*"), or None when nobody can tell (RunPython).
    rewrites: frozenset[tuple[str, str]] | None = frozenset()


@dataclasses.dataclass(frozen=True)
class ModelEdit:
    """An edit of models.py the plan needs so that state and models stay equal."""

    app_label: str
    #: Model class name as written in models.py.
    model: str
    #: Field attribute name; None for a Meta option.
    field: str | None
    #: Keyword argument (field) or Meta option name.
    option: str
    #: The value, as Python source, and the value itself (for the state check).
    source: str
    value: Any = None
    #: Why, one line (shown under --dry-run and in the summary).
    reason: str = ""
    #: Take the value's source text from this keyword of the same field when present
    #: (``db_default`` copies ``default``), so that names stay as the author wrote them.
    copy_from: str | None = None


@dataclasses.dataclass
class Chain:
    """What a strategy returns for one operation."""

    strategy: str
    steps: list[Step]
    edits: list[ModelEdit] = dataclasses.field(default_factory=list)
    #: Warnings for the summary (things the plan could not make safe, assumptions).
    notes: list[str] = dataclasses.field(default_factory=list)
    #: The operation index in the input (for ordering); -1 for resumed chains.
    index: int = -1
    #: False for operations carried over unchanged (nothing was unsafe).
    planned: bool = True

    @classmethod
    def left_alone(cls, strategy: str, index: int, why: str) -> Chain:
        """No steps: the operation stays as it is, for the reason ``why`` (a summary note)."""
        return cls(strategy=strategy, steps=[], index=index, planned=False, notes=[why])


# -- planned output --------------------------------------------------------------------


@dataclasses.dataclass
class PlannedMigration:
    app_label: str
    name: str
    atomic: bool
    steps: list[Step]
    #: Source lines of the dependencies list (already indented and comma-terminated),
    #: or keys to serialize.
    dependency_source: str | None = None
    dependencies: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    run_before_source: str | None = None
    #: Operations before and after those of the steps (lock_timeout).
    lead: list[OpSpec] = dataclasses.field(default_factory=list)
    tail: list[OpSpec] = dataclasses.field(default_factory=list)
    #: Other class attributes of the replaced migration (``initial = True``...), as source.
    class_attributes: list[str] = dataclasses.field(default_factory=list)
    #: Module-level code carried over from the replaced migration.
    carried_code: list[str] = dataclasses.field(default_factory=list)
    carried_imports: list[str] = dataclasses.field(default_factory=list)
    release: int = 1
    releases: int = 1
    #: Position in the release (1-based) and number of migrations in it.
    position: int = 1
    count: int = 1
    #: Set by the writer.
    text: str = ""
    path: Path | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.app_label, self.name)

    @property
    def phases(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            if step.phase not in seen:
                seen.append(step.phase)
        return seen


@dataclasses.dataclass(frozen=True)
class PendingStep:
    """A step of a later release, kept in the plan record until it can ship."""

    #: The release it belongs to, counted in its plan (1 = the plan's first release).
    release: int
    #: How many releases the plan has.
    releases: int
    #: The plan it belongs to: ``app_label.first_migration_name`` of that plan.
    plan: str
    strategy: str
    slug: str
    title: str
    #: Everything the strategy needs to rebuild the step (JSON-compatible).
    resume: Mapping[str, Any]
    #: Migrations (names in the app) that must be deployed before it.
    after: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "release": self.release,
            "releases": self.releases,
            "title": self.title,
            "after": list(self.after),
            "strategy": self.strategy,
            "slug": self.slug,
            "resume": dict(self.resume),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PendingStep:
        return cls(
            release=int(data["release"]),
            releases=int(data.get("releases", data["release"])),
            plan=str(data.get("plan", "")),
            strategy=str(data["strategy"]),
            slug=str(data["slug"]),
            title=str(data.get("title", "")),
            resume=dict(data.get("resume", {})),
            after=tuple(data.get("after", ())),
        )


@dataclasses.dataclass(frozen=True)
class FileChange:
    """One file the plan writes, rewrites or removes (``new`` None: removed)."""

    path: Path
    old: str | None
    new: str | None
    #: "migration", "models", "dependant", "record" or "replaced".
    role: str
    description: str = ""
