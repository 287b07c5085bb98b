"""The planner, from request to files: one service function the command calls.

1. load the migration graph and the app's plan record;
2. get the operations: the autodetector's (model changes), an existing
   migration's, or the pending steps of the next release;
3. ask the strategies for a chain of steps per operation;
4. schedule the steps into migrations of this release; steps of later releases
   go to the plan record;
5. render the files (Django's writer for operations, Jinja2 templates for
   headers and functions), models.py edits, the record, rewired dependants;
6. unless ``--dry-run``/``--check``: write them, then verify (the audit on the
   new migrations together, state equal to the models, forward and backward on
   PostgreSQL); a failed verification restores every file.

Nothing here prints: progress goes to the ``progress`` callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import django
from django.db import DEFAULT_DB_ALIAS

from ..conf import Config
from ..discovery import Key, load_graph
from ..pgversion import PgFacts
from . import strategies
from .context import OpContext, PlanContext, sql_connection
from .errors import PlanAborted, PlanError
from .inputs import (
    PlanInput,
    changes_of,
    check_app,
    from_migration,
    from_models,
    next_number,
    number_of,
)
from .model import Chain, FileChange, ModelEdit, PendingStep, PlannedMigration, SourceOp
from .modeledit import apply_edits, models_module, models_path
from .record import read_record, record_path, render_record
from .schedule import Slot, schedule
from .sourcecode import carried_code, rewire_dependency
from .staging import FOLDER as STAGING_FOLDER
from .staging import Staging, recover
from .strategies.base import passthrough
from .writer import render, render_migration, wrap_comment

Progress = Callable[[str, dict[str, Any]], None]

#: Behaviour when production's version is unknown: PostgreSQL 13 (the PG12+ CHECK path).
DEFAULT_POSTGRES_MAJOR = 13
#: Django 4.2 supports PostgreSQL 12+; every strategy relies on PG12 behaviour.
MIN_POSTGRES_MAJOR = 12
DEFAULT_LOCK_TIMEOUT = "5s"
MODES = ("write", "dry-run", "check")


@dataclasses.dataclass(frozen=True)
class PlanRequest:
    app_label: str
    config: Config
    migration_name: str | None = None
    #: Base name of the generated migrations (``--name``).
    name: str | None = None
    mode: str = "write"
    #: Write the pending steps of the next release even with model changes around.
    next_release: bool = False
    verify: bool = True
    #: Verify with the previous release's traffic (``--no-rehearse``: without).
    rehearse: bool = True
    #: None: ``db_default`` when Django is 5.0+.
    use_db_default: bool | None = None
    assume_renames: bool = True
    #: Rename tables and columns too (expand/contract) rather than keeping the old names.
    full_rename: bool = False
    #: Type changes swap the column names at the switch (``--no-column-swap``: they do not).
    column_swap: bool = True
    database: str = DEFAULT_DB_ALIAS
    manage: str = "python manage.py"


@dataclasses.dataclass
class PlanOutcome:
    request: PlanRequest
    description: str
    #: "plan", "next-release" or "nothing".
    kind: str = "plan"
    migrations: list[PlannedMigration] = dataclasses.field(default_factory=list)
    #: Pending steps after this plan (the record's content), and those this plan added.
    pending: list[PendingStep] = dataclasses.field(default_factory=list)
    added_pending: list[PendingStep] = dataclasses.field(default_factory=list)
    changes: list[FileChange] = dataclasses.field(default_factory=list)
    edits: list[ModelEdit] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    #: Ids of the strategies used, in order.
    strategies: list[str] = dataclasses.field(default_factory=list)
    releases: int = 1
    pg: PgFacts | None = None
    written: bool = False
    verification: Any = None
    #: Files put back after a failed verification, one line each.
    restored: list[str] = dataclasses.field(default_factory=list)
    record: Path | None = None
    #: Keys of the migrations this plan writes, for the audit.
    keys: tuple[Key, ...] = ()
    #: Nodes the new migrations start from (for the backward trip).
    start_nodes: tuple[Key, ...] = ()
    #: The state the models should have after the plan (for verification).
    expected_state: Any = None

    @property
    def has_plan(self) -> bool:
        return bool(self.changes)

    @property
    def exit_code(self) -> int:
        if self.request.mode == "check":
            return 1 if self.has_plan else 0
        if self.verification is not None and not self.verification.ok:
            return 1
        return 0


def _noop(event: str, data: dict[str, Any]) -> None:
    return None


def pg_facts(config: Config) -> PgFacts:
    if config.postgres_version is None:
        return PgFacts(DEFAULT_POSTGRES_MAJOR, origin="default")
    if config.postgres_version < MIN_POSTGRES_MAJOR:
        raise PlanError(
            f"--postgres-version {config.postgres_version}: the planner needs PostgreSQL "
            f"{MIN_POSTGRES_MAJOR}+ (the oldest Django 4.2 supports)."
        )
    return PgFacts(config.postgres_version, origin="setting")


def run_plan(request: PlanRequest, progress: Progress = _noop) -> PlanOutcome:
    """Plan, and unless dry-run or check, write and verify. Never prints.

    Writing is all or nothing (:mod:`.staging`): the files go into place together,
    and a failed verification, any exception or a signal puts every one of them back
    byte for byte before this returns or raises (:class:`PlanAborted` says which).
    """
    if request.mode not in MODES:
        raise PlanError(f"unknown mode {request.mode!r}")
    recovered = _recover_interrupted(request.app_label)
    outcome = build_plan(request)
    if recovered:
        outcome.notes.insert(
            0,
            "an earlier plan_zero_downtime was interrupted before it could clean up; its files "
            "were restored first: " + ", ".join(recovered),
        )
    if request.mode != "write" or not outcome.has_plan:
        return outcome
    staging = Staging.prepare(_staging_folder(request.app_label), outcome.changes)
    stage = ["writing the files"]

    def tracked(event: str, data: dict[str, Any]) -> None:
        stage[0] = _STAGES.get(event, stage[0])
        progress(event, data)

    try:
        staging.apply()
        _forget_modules(staging.paths)
        outcome.written = True
        tracked("written", {"changes": outcome.changes})
        run_formatters([c.path for c in outcome.changes if c.role == "migration" and c.new])
        if request.verify:
            from .verification import verify

            tracked("verifying", {})
            # Backfills write their progress to stderr; a RunPython may print.
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                outcome.verification = verify(outcome, tracked)
            if not outcome.verification.ok:
                outcome.restored = staging.restore()
                _forget_modules(staging.paths)
                outcome.written = False
                return outcome
        staging.commit()
    except BaseException as exc:
        restored = staging.restore()
        _forget_modules(staging.paths)
        raise PlanAborted(stage[0], exc, restored) from exc
    return outcome


#: Progress events -> the stage a failure or a signal interrupts (for the message).
_STAGES = {
    "written": "formatting the files",
    "verifying": "verifying the plan",
    "round-trip": "migrating forward and back on PostgreSQL",
    "data": "proving the rows survive",
    "import-check": "importing the models in a fresh process",
    "server": "starting PostgreSQL for the round trip",
    "audit": "auditing the new migrations",
}


def _staging_folder(app_label: str) -> Path:
    return record_path(app_label).parent / STAGING_FOLDER


def _recover_interrupted(app_label: str) -> list[str]:
    """Files an interrupted earlier plan of ``app_label`` left changed, restored now."""
    try:
        folder = _staging_folder(app_label)
    except (PlanError, LookupError, ImportError):
        return []  # no such app or no migrations package: check_app says so next
    restored = recover(folder)
    _forget_modules([folder])
    others = [line for line in restored if "/migrations/" not in f"/{line}"]
    if others:
        # This process imported those modules before they were put back.
        raise PlanError(
            "an earlier plan_zero_downtime was interrupted before it could clean up; its files "
            f"are restored now ({', '.join(restored)}). Run the command again."
        )
    return restored


def run_formatters(paths: list[Path]) -> None:
    """What makemigrations does after writing: black, when it is installed."""
    if not paths:
        return
    from django.core.management.utils import run_formatters as django_formatters

    try:
        django_formatters([str(p) for p in paths], stderr=io.StringIO())
    except TypeError:  # pragma: no cover - Django versions without the stderr argument
        django_formatters([str(p) for p in paths])


# -- building ----------------------------------------------------------------------------


def _check_routed(operations: list[Any], app: str, database: str) -> None:
    """Refuse a change whose operations the routers send to another database: its plan
    would be verified where none of it runs."""
    from django.db import connections

    from ..routing import operation_routed

    if not operations or any(operation_routed(op, app, database) for op in operations):
        return
    others = [
        alias
        for alias in connections
        if alias != database and any(operation_routed(op, app, alias) for op in operations)
    ]
    where = (
        f"they run on database {others[0]!r}: plan them with --database {others[0]}"
        if len(others) == 1
        else f"they run on {', '.join(map(repr, others))}: plan them with --database ALIAS"
        if others
        else "no database of DATABASES accepts them"
    )
    raise PlanError(
        f"the project's database routers send no operation of this change of {app!r} to "
        f"database {database!r}; {where}."
    )


def build_plan(request: PlanRequest) -> PlanOutcome:
    app = request.app_label
    loader = load_graph()
    check_app(loader, app)
    config = request.config
    pg = pg_facts(config)
    rec_path = record_path(app)
    pending = read_record(rec_path)
    inp: PlanInput | None = None
    if request.migration_name:
        if request.next_release:
            raise PlanError("--next-release writes pending steps: give no migration name")
        inp = from_migration(loader, app, request.migration_name, database=request.database)
    elif not request.next_release:
        inp = from_models(loader, app, assume_renames=request.assume_renames)
    if inp is not None:
        _check_routed(inp.operations, app, request.database)
    use_db_default = request.use_db_default
    if use_db_default is None:
        use_db_default = django.VERSION >= (5, 0)
    elif use_db_default and django.VERSION < (5, 0):
        raise PlanError("db_default needs Django 5.0+: drop --db-default")
    # --check is for CI: steps waiting for a later release are expected there, not a plan.
    resuming = inp is None or (
        not inp.operations
        and request.migration_name is None
        and bool(pending)
        and request.mode != "check"
    )
    before = inp.before if inp is not None and not resuming else loader.project_state()
    plan_ctx = PlanContext(
        app_label=app,
        config=config,
        pg=pg,
        connection=sql_connection(request.database),
        existing_models=frozenset(f"{a}.{m}" for a, m in before.models),
        use_db_default=use_db_default,
        lock_timeout=config.lock_timeout or DEFAULT_LOCK_TIMEOUT,
        full_rename=request.full_rename,
        column_swap=request.column_swap,
        manage=request.manage,
        later=inp.later if inp is not None else frozenset(),
    )
    outcome = PlanOutcome(request=request, description="", pg=pg, record=rec_path)
    if resuming:
        return _plan_next_release(request, loader, plan_ctx, pending, outcome)
    assert inp is not None
    outcome.description = inp.description
    outcome.notes.extend(inp.renames + inp.notes)
    if not inp.operations:
        outcome.kind = "nothing"
        outcome.notes.append(f"No changes detected in app {app!r}.")
        if pending:
            outcome.notes.append(
                f"{len(pending)} step(s) wait for a later release in {rec_path.parent.name}/"
                f"{rec_path.name}: `{request.manage} plan_zero_downtime {app}` writes them once "
                "the release before is deployed."
            )
        return outcome
    chains = _chains(inp, plan_ctx)
    if inp.original is not None and not any(c.planned for c in chains):
        slots, _later = schedule(chains)
        if len(slots) <= 1:
            outcome.kind = "nothing"
            outcome.notes.extend(c for chain in chains for c in chain.notes)
            outcome.notes.append(
                f"Nothing to plan: no strategy of the planner covers an operation of "
                f"{inp.description} (docs/planner.md lists what each plans); it stays as it is."
            )
            return outcome
        # Data migrations (RunPython) mixed with schema changes: they get a migration of
        # their own, so no table lock is held while they run.
        outcome.strategies.append("split-data-from-schema")
    return _assemble(request, loader, plan_ctx, inp, chains, pending, outcome)


def _chains(inp: PlanInput, plan_ctx: PlanContext) -> list[Chain]:
    chains = []
    state = inp.before
    atomic = inp.original.atomic if inp.original is not None else True
    for index, operation in enumerate(inp.operations):
        # What later operations (of this input, then of the history) change again.
        plan_ctx.later = inp.later | changes_of(inp.operations[index + 1 :])
        after = state.clone()
        operation.state_forwards(inp.app_label, after)
        ctx = OpContext(
            plan=plan_ctx,
            index=index,
            operation=operation,
            before=state,
            after=after,
            source=inp.sources[index],
        )
        chain = strategies.plan_operation(ctx)
        if not chain.planned:
            notes = chain.notes or _opaque_note(operation, index)
            chain = passthrough(ctx, atomic=atomic)
            chain.notes = notes
        chains.append(chain)
        state = after
    return chains


def _opaque_note(operation: Any, index: int) -> list[str]:
    """Why an operation written as SQL or code is carried over as it is."""
    from django.db import migrations

    inner = [operation]
    if isinstance(operation, migrations.SeparateDatabaseAndState):
        inner = list(operation.database_operations)
    kinds = sorted(
        {
            type(op).__name__
            for op in inner
            if isinstance(op, (migrations.RunSQL, migrations.RunPython))
        }
    )
    if not kinds:
        return []
    return [
        f"operations[{index}] ({type(operation).__name__}) runs {' and '.join(kinds)} written by "
        "hand: the planner rewrites Django's operations, never hand-written SQL or code, so it "
        "is carried over as it is. Write its safe form by hand (the audit's fix says how)."
    ]


def _plan_next_release(
    request: PlanRequest,
    loader: Any,
    plan_ctx: PlanContext,
    pending: list[PendingStep],
    outcome: PlanOutcome,
) -> PlanOutcome:
    app = request.app_label
    outcome.kind = "next-release"
    if not pending:
        outcome.kind = "nothing"
        outcome.notes.append(f"No changes detected in app {app!r} and no step is pending.")
        return outcome
    by_plan: dict[str, int] = {}
    for entry in pending:
        by_plan[entry.plan] = min(by_plan.get(entry.plan, entry.release), entry.release)
    ready = [e for e in pending if e.release == by_plan[e.plan]]
    _check_deployed(ready, loader, app, outcome)
    chains = []
    for entry in ready:
        steps = strategies.resume(entry.strategy, entry.resume, plan_ctx)
        chains.append(Chain(strategy=entry.strategy, steps=steps))
    plans = ", ".join(
        f"release {release} of the plan {plan}" for plan, release in sorted(by_plan.items())
    )
    outcome.description = f"the pending steps of {app}: {plans}"
    leaves = sorted(k for k in loader.graph.leaf_nodes(app))
    inp = PlanInput(
        app_label=app,
        operations=[],
        sources=[],
        before=loader.project_state(),
        dependencies=list(leaves),
        dependency_source=None,
        number=next_number(loader, app),
        description=outcome.description,
    )
    return _assemble(request, loader, plan_ctx, inp, chains, pending, outcome, ready=ready)


def _check_deployed(ready: list[PendingStep], loader: Any, app: str, outcome: PlanOutcome) -> None:
    """Refuse to write a release whose previous release is still part of this change."""
    from ..discovery import changed_since, default_base_ref

    names = sorted({n for e in ready for n in e.after})
    missing = [n for n in names if (app, n) not in loader.graph.nodes]
    if missing:
        raise PlanError(
            f"the pending steps follow {', '.join(missing)}, which no longer exist in {app}: "
            "edit or delete their entries in the plan record."
        )
    try:
        ref = outcome.request.config.base_ref or default_base_ref()
        changed, _base = changed_since(loader, ref)
    except Exception as exc:
        reason = str(exc).split(",")[0].split(";")[0].strip()
        outcome.notes.append(
            f"could not check with git that release {ready[0].release - 1} "
            f"({', '.join(names)}) is merged: {reason}. Write the next release only once it "
            "is deployed everywhere."
        )
        return
    still = [n for n in names if (app, n) in set(changed)]
    if still:
        raise PlanError(
            f"the previous release ({', '.join(still)}) is still part of this change (not on "
            f"{ref}): ship and deploy it first, then run plan_zero_downtime {app} again. Steps "
            "of different releases never go into one change."
        )


# -- assembling files ------------------------------------------------------------------


def _assemble(
    request: PlanRequest,
    loader: Any,
    plan_ctx: PlanContext,
    inp: PlanInput,
    chains: list[Chain],
    pending: list[PendingStep],
    outcome: PlanOutcome,
    ready: list[PendingStep] | None = None,
) -> PlanOutcome:
    app = request.app_label
    slots, later = schedule(chains)
    if not slots:
        raise PlanError("the plan has no step for this release")  # pragma: no cover
    for chain in chains:
        outcome.notes.extend(chain.notes)
        if chain.planned and chain.strategy not in outcome.strategies:
            outcome.strategies.append(chain.strategy)
        outcome.edits.extend(chain.edits)
    base_release = ready[0].release if ready else 1
    plan_releases = max(
        [e.releases for e in (ready or [])]
        + [base_release + s.release - 1 for s in later]
        + [base_release]
    )
    names = _names(
        slots,
        inp.number,
        request.name,
        loader,
        app,
        replaced=inp.original.key[1] if inp.original is not None else None,
    )
    plan_id = ready[0].plan if ready else f"{app}.{names[0]}"
    migrations_dir = record_path(app).parent
    planned: list[PlannedMigration] = []
    for index, (slot, name) in enumerate(zip(slots, names, strict=True)):
        migration = PlannedMigration(
            app_label=app,
            name=name,
            atomic=slot.atomic,
            steps=slot.steps,
            release=base_release,
            releases=plan_releases,
            position=index + 1,
            count=len(slots),
        )
        if index == 0:
            if inp.original is not None:
                migration.class_attributes = list(inp.original.parsed.class_attributes)
            if inp.dependency_source is not None:
                migration.dependency_source = inp.dependency_source
            else:
                migration.dependencies = list(inp.dependencies)
        else:
            migration.dependencies = [(app, names[index - 1])]
        if index == len(slots) - 1 and inp.original is not None:
            migration.run_before_source = inp.original.parsed.run_before_source
        if inp.original is not None:
            _carry_code(migration, inp)
        migration.lead, migration.tail = _lock_timeout_ops(plan_ctx, slot)
        migration.path = migrations_dir / f"{name}.py"
        planned.append(migration)
    # Pending steps: what this plan adds, and what stays of the record.
    written_names = tuple(names)
    added: list[PendingStep] = []
    for step in later:
        if step.resume is None:  # pragma: no cover - strategies always give it
            raise PlanError(f"strategy {step.strategy} gave a later step without resume data")
        added.append(
            PendingStep(
                release=base_release + step.release - 1,
                releases=plan_releases,
                plan=plan_id,
                strategy=step.strategy,
                slug=step.slug,
                title=step.title,
                resume=dict(step.resume),
                after=written_names,
            )
        )
    remaining = [p for p in pending if not ready or p not in ready]
    if ready:
        remaining = [
            dataclasses.replace(p, after=written_names) if p.plan == plan_id else p
            for p in remaining
        ]
    new_pending = remaining + added
    outcome.migrations = planned
    outcome.pending = new_pending
    outcome.added_pending = added
    outcome.releases = plan_releases
    outcome.keys = tuple((app, n) for n in names)
    if inp.original is not None:
        outcome.start_nodes = tuple(
            sorted(p.key for p in loader.graph.node_map[inp.original.key].parents)
        )
    else:
        outcome.start_nodes = tuple(sorted(loader.graph.leaf_nodes(app)))
    next_command = None
    if any(p.plan == plan_id and p.release == base_release + 1 for p in new_pending):
        next_command = f"{request.manage} plan_zero_downtime {app}"
    record_rel = f"{migrations_dir.parent.name}/{migrations_dir.name}/{record_path(app).name}"
    for migration in planned:
        header = _header(
            migration,
            inp,
            plan_ctx,
            ready,
            next_command if migration is planned[-1] else None,
            record_rel,
        )
        render_migration(migration, header)
        outcome.changes.append(
            FileChange(
                path=migration.path,  # type: ignore[arg-type]
                old=None,
                new=migration.text,
                role="migration",
                description=", ".join(dict.fromkeys(s.title for s in migration.steps)),
            )
        )
    _replacement_changes(inp, planned, outcome)
    _model_changes(outcome)
    _record_change(app, pending, new_pending, outcome)
    outcome.expected_state = _expected_state(loader, inp, outcome)
    return outcome


def _names(
    slots: list[Slot],
    number: int,
    name: str | None,
    loader: Any,
    app: str,
    replaced: str | None = None,
) -> list[str]:
    """Names of the plan's migrations: ``NNNN_<slug>``, numbered on from ``number``.

    A migration replaced in the middle of a history has neighbours with the next
    numbers; the plan's files then share the replaced one's number with a
    sub-number (``0006_1_<slug>``, ``0006_2_<slug>``...), so that every number stays
    unique and the files sort where the replaced one was.
    """
    # Every name on disk stays taken (the replaced one too: its file goes only after the new
    # ones are written); its number is free for the plan.
    existing = {n for a, n in loader.disk_migrations if a == app}
    taken = {number_of(n) for n in existing if n != replaced}
    bases = []
    for index, slot in enumerate(slots):
        base = _slot_slug(slot)
        if name:
            base = name if index == 0 else f"{name}_{_phase_word(slot)}"
        bases.append(re.sub(r"[^0-9a-zA-Z_]+", "_", base).strip("_")[:60] or "plan")
    squeeze = len(slots) > 1 and any(number + i in taken for i in range(len(slots)))
    out: list[str] = []
    for index, base in enumerate(bases):
        prefix = f"{number:04d}_{index + 1}" if squeeze else f"{number + index:04d}"
        candidate = f"{prefix}_{base}"
        suffix = 2
        while candidate in existing or candidate in out:
            candidate = f"{prefix}_{base}_{suffix}"
            suffix += 1
        out.append(candidate)
    return out


def _phase_word(slot: Slot) -> str:
    phases = list(dict.fromkeys(s.phase for s in slot.steps))
    return "_".join(phases[:2])


def _slot_slug(slot: Slot) -> str:
    slugs = [s.slug for s in slot.steps if s.slug]
    slugs = list(dict.fromkeys(slugs))
    if not slugs:
        return "plan"
    if len(slugs) == 1:
        return slugs[0]
    joined = f"{slugs[0]}_and_{slugs[1]}"
    if len(slugs) == 2 and len(joined) <= 60:
        return joined
    return f"{slugs[0]}_and_more"


def _lock_timeout_ops(plan_ctx: PlanContext, slot: Slot) -> tuple[list[Any], list[Any]]:
    value = plan_ctx.lock_timeout.replace("'", "")
    if slot.atomic:
        setting = f"SET LOCAL lock_timeout = '{value}'"
        return (
            [
                plan_ctx.sql(
                    setting,
                    None,
                    comment=f"Give up after {value} rather than queue all traffic behind a lock.",
                )
            ],
            [plan_ctx.sql(None, setting, comment="The same when migrating backwards.")],
        )
    setting = f"SET lock_timeout = '{value}'"
    return (
        [
            plan_ctx.sql(
                setting,
                "RESET lock_timeout",
                comment=f"Not atomic: a session setting, reset below. Give up after {value}.",
            )
        ],
        [plan_ctx.sql("RESET lock_timeout", setting)],
    )


def _carry_code(migration: PlannedMigration, inp: PlanInput) -> None:
    assert inp.original is not None
    used: set[str] = set()

    def walk(specs: Any) -> None:
        for spec in specs:
            if isinstance(spec, SourceOp):
                used.update(spec.names)
            for attr in ("state", "database"):
                walk(getattr(spec, attr, ()))

    for step in migration.steps:
        walk(step.operations)
    if not used:
        return
    imports, code = carried_code(inp.original.parsed, used)
    migration.carried_imports = imports
    migration.carried_code = code


def _header(
    migration: PlannedMigration,
    inp: PlanInput,
    plan_ctx: PlanContext,
    ready: list[PendingStep] | None,
    next_command: str | None,
    record_rel: str,
) -> str:
    steps = []
    seen = set()
    for step in migration.steps:
        key = (step.title, step.why)
        if key in seen:
            continue
        seen.add(key)
        steps.append(step)
    replaces = None
    if inp.original is not None:
        replaces = f"{inp.original.key[0]}.{inp.original.key[1]}"
    after = ", ".join(sorted({n for e in (ready or []) for n in e.after})) or "the previous release"
    text = render(
        "header.txt.j2",
        app_label=migration.app_label,
        release=migration.release,
        releases=migration.releases,
        position=migration.position,
        count=migration.count,
        phases=", ".join(migration.phases),
        replaces=replaces,
        after=after,
        steps=[
            {
                "title": s.title if s.strategy != "carried-over" else f"Unchanged: {s.title}",
                "why": s.why,
                "notes": s.notes,
            }
            for s in steps
        ],
        atomic=migration.atomic,
        lock_timeout=plan_ctx.lock_timeout.replace("'", ""),
        next_command=next_command,
        record=record_rel,
    )
    lines = [line.rstrip() for line in text.strip("\n").splitlines()]
    # collapse runs of blank lines
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return wrap_comment("\n".join(out))


def _replacement_changes(
    inp: PlanInput, planned: list[PlannedMigration], outcome: PlanOutcome
) -> None:
    original = inp.original
    if original is None:
        return
    outcome.changes.append(
        FileChange(
            path=original.path,
            old=original.parsed.text,
            new=None,
            role="replaced",
            description=f"replaced by {', '.join(m.name for m in planned)}",
        )
    )
    last, first = planned[-1].name, planned[0].name
    edited: dict[Path, tuple[str, str]] = {}
    for _key, path in original.dependants:
        old, new = edited.get(path, (path.read_text(encoding="utf-8"),) * 2)
        edited[path] = (old, rewire_dependency(new, original.key[0], original.key[1], last))
    for _key, path in original.runs_before:
        old, new = edited.get(path, (path.read_text(encoding="utf-8"),) * 2)
        edited[path] = (old, rewire_dependency(new, original.key[0], original.key[1], first))
    for path, (old, new) in sorted(edited.items()):
        if old != new:
            outcome.changes.append(
                FileChange(
                    path=path,
                    old=old,
                    new=new,
                    role="dependant",
                    description=f"now depends on {last}",
                )
            )


def _model_changes(outcome: PlanOutcome) -> None:
    """models.py edits the plan needs; refused when one cannot be made safely.

    The plan is only right with the edit (state and models must stay equal), so an
    edit that cannot be placed stops the plan, saying what to write by hand.
    """
    by_path: dict[Path, list[ModelEdit]] = {}
    refused: list[str] = []
    namespaces: dict[Path, dict[str, Any]] = {}
    for edit in outcome.edits:
        inherited = _declared_in_abstract_base(edit)
        if inherited:
            refused.append(inherited)
            continue
        path = models_path(edit.app_label, edit.model)
        if path is None:
            refused.append(
                f"{edit.model}: cannot find the source of model {edit.app_label}.{edit.model}; "
                f"add {edit.option}={edit.source} to it by hand ({edit.reason})"
            )
            continue
        by_path.setdefault(path, []).append(edit)
        module = models_module(edit.app_label, edit.model)
        if module is not None:
            namespaces[path] = vars(module)
    for path, edits in sorted(by_path.items()):
        old = path.read_text(encoding="utf-8")
        result = apply_edits(old, edits, namespaces.get(path))
        refused.extend(result.refused)
        if result.text != old:
            outcome.changes.append(
                FileChange(
                    path=path,
                    old=old,
                    new=result.text,
                    role="models",
                    description="; ".join(
                        f"{e.model}.{e.field or 'Meta'}: {e.option} ({e.reason})"
                        for e in result.applied
                    ),
                )
            )
    if refused:
        raise PlanError(
            "the plan needs models.py edits it cannot make safely, so nothing was written:\n  "
            + "\n  ".join(refused)
            + "\nMake them by hand (or write the field as a plain field class call), then "
            "plan again."
        )


def _declared_in_abstract_base(edit: ModelEdit) -> str | None:
    """Why ``edit`` cannot be made on its model's class: the field comes from an abstract
    base class (an edit there changes every model that inherits it)."""
    from django.apps import apps

    if edit.field is None:
        return None
    try:
        model = apps.get_model(edit.app_label, edit.model)
    except LookupError:
        return None
    for base in model.__mro__[1:]:
        meta = getattr(base, "_meta", None)
        if meta is None or not getattr(meta, "abstract", False):
            continue
        if any(f.name == edit.field for f in meta.local_fields):
            return (
                f"{edit.model}.{edit.field}: declared in the abstract base class "
                f"{base.__module__}.{base.__qualname__}; add {edit.option}={edit.source} there "
                f"by hand if every model inheriting it should have it ({edit.reason})"
            )
    return None


def _record_change(
    app: str, before: list[PendingStep], after: list[PendingStep], outcome: PlanOutcome
) -> None:
    path = record_path(app)
    old = path.read_text(encoding="utf-8") if path.exists() else None
    new = render_record(app, after)
    if old != new:
        outcome.changes.append(
            FileChange(
                path=path,
                old=old,
                new=new,
                role="record",
                description=f"{len(after)} pending step(s)",
            )
        )


def _expected_state(loader: Any, inp: PlanInput, outcome: PlanOutcome) -> Any:
    """The state the migrations should end in: the models (or the replaced history), plus edits."""
    from django.apps import apps as global_apps
    from django.db.migrations.state import ProjectState

    if inp.original is not None:
        state = loader.project_state()
    else:
        state = ProjectState.from_apps(global_apps)
    for edit in outcome.edits:
        model_key = (edit.app_label, edit.model.lower())
        model_state = state.models.get(model_key)
        if model_state is None:
            continue
        if edit.field is None:
            model_state.options[edit.option] = edit.value
        elif edit.field in model_state.fields:
            field = model_state.fields[edit.field]
            _name, _path, args, kwargs = field.deconstruct()
            kwargs[edit.option] = edit.value
            model_state.fields[edit.field] = field.__class__(*args, **kwargs)
    return state


# -- writing ---------------------------------------------------------------------------------


def _forget_modules(paths: list[Path]) -> None:
    """Forget the imported migration modules of the folders that changed.

    The next ``MigrationLoader`` then imports them from disk again: rewired
    dependencies are read anew, and a removed migration is not found in
    ``sys.modules``. models.py stays imported (the app registry holds its classes).
    """
    importlib.invalidate_caches()
    folders = {p.resolve().parent for p in paths if p.resolve().parent.name == "migrations"}
    for name, module in list(sys.modules.items()):
        filename = getattr(module, "__file__", None)
        if not filename or not filename.endswith(".py"):
            continue
        file_path = Path(filename).resolve()
        if file_path.parent in folders and file_path.name != "__init__.py":
            del sys.modules[name]


__all__ = [
    "DEFAULT_POSTGRES_MAJOR",
    "PlanOutcome",
    "PlanRequest",
    "build_plan",
    "run_plan",
]
