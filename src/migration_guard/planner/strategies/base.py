"""What a strategy is, and the pieces several strategies share.

A strategy is a class in its own module under ``planner.strategies``; defining
it registers it (as rules do). It says which audit rules it answers
(``rules``), whether it applies to an operation (``matches``) and what chain of
steps makes that operation safe (``plan``). Steps of a later release are
rebuilt from the plan record by ``resume``.

A new field on an existing table can need several strategies at once (a NOT
NULL column whose value is computed, with a unique constraint and a foreign
key): :func:`plan_add_field` builds the column step with the strategy that owns
the column and asks every other concerned strategy for its follow-up steps
(``field_followups``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import migrations, models
from django.db.models import NOT_PROVIDED

from ... import sqlfacts
from ..model import Chain, DjangoOp, OpSpec, SeparateSpec, SourceOp, Step

if TYPE_CHECKING:
    from ..context import DjangoField, DjangoModel, DjangoOperation, OpContext, PlanContext

_REGISTRY: dict[str, type[Strategy]] = {}


class Strategy:
    """Base class; subclasses with an ``id`` register themselves."""

    id: ClassVar[str] = ""
    #: Audit rule ids whose findings this strategy fixes.
    rules: ClassVar[tuple[str, ...]] = ()
    #: One line for docs and summaries.
    summary: ClassVar[str] = ""
    #: Lower runs first when several strategies could match one operation.
    priority: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.id:
            return
        if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
            raise RuntimeError(f"two strategies share the id {cls.id!r}")
        _REGISTRY[cls.id] = cls

    def matches(self, ctx: OpContext) -> bool:
        return False

    def plan(self, ctx: OpContext) -> Chain:
        raise NotImplementedError

    def field_followups(self, ctx: OpContext, facts: FieldFacts) -> FieldPart | None:
        """For a new field: inline database operations and later steps this strategy adds."""
        return None

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        """Rebuild the steps of a later release from what ``plan`` recorded."""
        raise NotImplementedError(f"strategy {self.id} records no later steps")


def registered() -> dict[str, type[Strategy]]:
    return dict(_REGISTRY)


@dataclasses.dataclass
class FieldPart:
    """A strategy's contribution to a new field: inline database ops, later steps."""

    inline: list[OpSpec] = dataclasses.field(default_factory=list)
    steps: list[Step] = dataclasses.field(default_factory=list)
    locks: frozenset[str] = frozenset()
    notes: list[str] = dataclasses.field(default_factory=list)


# -- operations carried over unchanged ---------------------------------------------

_DATA_OPS = (migrations.RunPython,)
_OPAQUE_OPS = (migrations.RunPython, migrations.RunSQL)


def passthrough(ctx: OpContext, *, atomic: bool = True) -> Chain:
    """The operation, unchanged: nothing about it is unsafe (or nothing can be done)."""
    op = ctx.operation
    spec: OpSpec = ctx.spec()
    opaque = isinstance(op, _OPAQUE_OPS) or not _is_django_model_op(op)
    data = isinstance(op, _DATA_OPS)
    why = ""
    if data:
        from ..writer import text

        why = text("carried-over", "run_python")
    step = Step(
        strategy="carried-over",
        slug=_slug_of(op),
        phase="change",
        title=_describe(op),
        why=why,
        operations=[spec],
        atomic=atomic,
        data=data,
        opaque=opaque,
        models=frozenset(operation_keys(op, ctx.app_label)),
        rewrites=_rewrites(ctx, op),
    )
    return Chain(strategy="carried-over", steps=[step], index=ctx.index, planned=False)


def _rewrites(ctx: OpContext, op: DjangoOperation) -> frozenset[tuple[str, str]] | None:
    """What an operation carried over may change in existing rows: (table, column) pairs,
    (table, "*") for any column, None when nobody can tell (code, custom operations)."""
    if isinstance(op, migrations.SeparateDatabaseAndState):
        out: set[tuple[str, str]] = set()
        for inner in op.database_operations:
            found = _rewrites(ctx, inner)
            if found is None:
                return None
            out |= found
        return frozenset(out)
    if isinstance(op, migrations.RunSQL):
        from ...trace.seed import sql_tables

        return frozenset((table, "*") for table in sql_tables(op.sql))
    if isinstance(op, migrations.RunPython) or not _is_django_model_op(op):
        return None
    if isinstance(op, migrations.AlterField):
        try:
            model = ctx.model_before(op.model_name)
            field = model._meta.get_field(op.name)
        except LookupError:
            return frozenset()
        return frozenset({(model._meta.db_table, field.column)})
    return frozenset()


def _is_django_model_op(op: DjangoOperation) -> bool:
    return type(op).__module__.startswith("django.") and not isinstance(op, _OPAQUE_OPS)


def _describe(op: DjangoOperation) -> str:
    try:
        return str(op.describe())
    except Exception:  # pragma: no cover - third-party operations
        return type(op).__name__


def _slug_of(op: DjangoOperation) -> str:
    if isinstance(op, migrations.RunPython):
        name = getattr(op.code, "__name__", "") or "python"
        return f"run_{name}" if name != "<lambda>" else "run_python"
    if isinstance(op, migrations.RunSQL):
        return "run_sql"
    try:
        return str(op.migration_name_fragment or "")
    except Exception:  # pragma: no cover - third-party operations
        return ""


def operation_keys(op: DjangoOperation, app_label: str) -> set[str]:
    """State keys an operation touches: ``app.model`` or ``app.model.field``."""
    model = getattr(op, "model_name_lower", None)
    if model is None and hasattr(op, "name_lower") and not hasattr(op, "model_name"):
        model = op.name_lower
    if model is None:
        return set()
    base = f"{app_label}.{model}"
    field = getattr(op, "name_lower", None) if hasattr(op, "model_name") else None
    if isinstance(op, migrations.RenameField):
        return {f"{base}.{op.old_name_lower}", f"{base}.{op.new_name_lower}"}
    if isinstance(op, migrations.RenameModel):
        return {base, f"{app_label}.{op.new_name_lower}"}
    if field:
        return {f"{base}.{field}"}
    return {base}


def together(state: Any, app_label: str, model_name: str, option: str) -> set[tuple[str, ...]]:
    """``unique_together``/``index_together`` of a model state as a set of field tuples
    (makemigrations wrote ``None``, a single tuple or a list of them over the years)."""
    from django.db.models.options import normalize_together

    value = state.models[(app_label, model_name.lower())].options.get(option)
    return {tuple(fields) for fields in normalize_together(value or ())}


def keys_conflict(a: Iterable[str], b: Iterable[str]) -> bool:
    """Two key sets touch the same model state (a model key covers its fields)."""
    a_set, b_set = set(a), set(b)
    if a_set & b_set:
        return True
    for x in a_set:
        for y in b_set:
            if x.count(".") != y.count(".") and (x.startswith(y + ".") or y.startswith(x + ".")):
                return True
    return False


# -- facts about a field -------------------------------------------------------------


def is_volatile_sql(sql: str) -> bool:
    """``sql`` calls a function PostgreSQL evaluates per row (a DEFAULT with it rewrites).

    The audit's source (:func:`migration_guard.sqlfacts.volatility`): the snapshot of
    PostgreSQL's catalog while planning; verification audits the plan against the
    scratch server's own catalog.
    """
    return sqlfacts.volatility().first_volatile(sql) is not None


@dataclasses.dataclass
class FieldFacts:
    """What the planner needs to know about one field of one model state."""

    app_label: str
    #: Model name as in the state (lowercase) and class name.
    model_name: str
    model_class: str
    name: str
    table: str
    column: str
    db_type: str
    null: bool
    #: The field of the operation (unbound, serializable) and the rendered one.
    op_field: DjangoField
    field: DjangoField
    #: Primary key columns (several for a composite key): the backfill's keyset.
    pk_columns: tuple[str, ...]
    has_default: bool = False
    default: Any = None
    default_callable: bool = False
    #: SQL of ``db_default`` (Django 5.0+) or None.
    db_default_sql: str | None = None
    db_default_volatile: bool = False
    unique: bool = False
    #: A plain (non-unique) index on the column: db_index, ForeignKey's default.
    index: bool = False
    #: A foreign key constraint (``db_constraint``) and what it references.
    foreign_key: bool = False
    #: CHECK expression of the field type (PositiveIntegerField...), or None.
    check_sql: str | None = None
    #: varchar/text with an index or unique: Django adds a ``_like`` pattern-ops index.
    like: bool = False
    collation: str | None = None

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.model_name}.{self.name.lower()}"

    @property
    def model_key(self) -> str:
        return f"{self.app_label}.{self.model_name}"

    @property
    def constant_default(self) -> bool:
        return self.has_default and not self.default_callable

    @property
    def computed(self) -> bool:
        """Existing rows need a value computed per row (callable or volatile default)."""
        if self.db_default_sql is not None:
            return self.db_default_volatile
        return self.has_default and self.default_callable


def key_columns(model: DjangoModel) -> tuple[str, ...]:
    """The primary key's columns (Django 5.2's CompositePrimaryKey has several)."""
    pk = model._meta.pk
    columns = getattr(pk, "columns", None)
    if columns:
        return tuple(str(c) for c in columns)
    return (str(pk.column),)


def field_facts(
    ctx: OpContext, model_name: str, name: str, op_field: DjangoField, *, after: bool = True
) -> FieldFacts:
    state = ctx.after if after else ctx.before
    model = state.apps.get_model(ctx.app_label, model_name)
    field = model._meta.get_field(name)
    conn = ctx.plan.connection
    editor = ctx.plan.editor()
    params = field.db_parameters(connection=conn)
    db_type = params.get("type") or ""
    facts = FieldFacts(
        app_label=ctx.app_label,
        model_name=model._meta.model_name,
        model_class=model.__name__,
        name=field.name,
        table=model._meta.db_table,
        column=field.column,
        db_type=db_type,
        null=bool(field.null),
        op_field=op_field,
        field=field,
        pk_columns=key_columns(model),
        collation=params.get("collation"),
    )
    if field.has_default():
        facts.has_default = True
        facts.default = field.default
        facts.default_callable = callable(field.default)
    if getattr(field, "has_db_default", lambda: False)():
        sql, sql_params = editor.db_default_sql(field)
        facts.db_default_sql = sql % tuple(editor.quote_value(p) for p in sql_params)
        facts.db_default_volatile = is_volatile_sql(facts.db_default_sql)
    facts.unique = bool(field.unique) and not field.primary_key
    is_relation = bool(field.is_relation and (field.many_to_one or field.one_to_one))
    facts.foreign_key = is_relation and bool(getattr(field, "db_constraint", False))
    facts.index = bool(field.db_index) and not facts.unique
    facts.check_sql = field.db_check(conn)
    facts.like = (
        (facts.unique or facts.index)
        and (db_type.startswith("varchar") or db_type.startswith("text"))
        and not facts.collation
    )
    return facts


def clone_field(field: DjangoField, **changes: Any) -> DjangoField:
    """A copy of an (unbound) field with some constructor arguments changed.

    ``NOT_PROVIDED`` as a value removes the argument.
    """
    _name, _path, args, kwargs = field.deconstruct()
    for key, value in changes.items():
        if value is NOT_PROVIDED:
            kwargs.pop(key, None)
        else:
            kwargs[key] = value
    return field.__class__(*args, **kwargs)


def bare_field(facts: FieldFacts, **changes: Any) -> DjangoField:
    """The field as a bare column: no unique, no index, no foreign key constraint."""
    strip: dict[str, Any] = {}
    _name, _path, _args, kwargs = facts.op_field.deconstruct()
    if facts.unique or "unique" in kwargs:
        strip["unique"] = NOT_PROVIDED
    if facts.index or facts.foreign_key:
        strip["db_index"] = False
    if facts.foreign_key:
        strip["db_constraint"] = False
    strip.update(changes)
    return clone_field(facts.op_field, **strip)


def column_definition(
    ctx: OpContext, facts: FieldFacts, *, default_sql: str | None, not_null: bool
) -> str:
    """``"col" type [COLLATE x] [DEFAULT v] [NOT NULL]`` for a hand-written ADD COLUMN."""
    q = ctx.plan.quote
    parts = [q(facts.column), facts.db_type]
    if facts.collation:
        parts.append(f"COLLATE {q(facts.collation)}")
    if default_sql is not None:
        parts.append(f"DEFAULT {default_sql}")
    parts.append("NOT NULL" if not_null else "NULL")
    return " ".join(parts)


def plain_column_ops(ctx: OpContext, facts: FieldFacts, *, comment: str = "") -> list[OpSpec]:
    """The new column alone (nullable, as the field says), without what follows it.

    Django's AddField with a bare copy of the field (no unique, index or foreign key
    constraint); a hand-written ADD COLUMN when the field type brings a CHECK.
    """
    from ..model import RunSQLSpec

    if facts.check_sql:
        q = ctx.plan.quote
        return [
            RunSQLSpec(
                sql=f"ALTER TABLE {q(facts.table)} ADD COLUMN "
                + column_definition(ctx, facts, default_sql=None, not_null=not facts.null),
                reverse=f"ALTER TABLE {q(facts.table)} DROP COLUMN {q(facts.column)}",
                comment=comment,
                locks=frozenset({facts.table}),
            )
        ]
    return [
        DjangoOp(
            migrations.AddField(
                model_name=facts.model_name, name=facts.name, field=bare_field(facts)
            ),
            comment=comment,
        )
    ]


def constant_default_sql(ctx: OpContext, facts: FieldFacts, value: Any = NOT_PROVIDED) -> str:
    """The field's constant default (or ``value``) as a SQL literal, as Django would send it.

    Prepared by the field rendered in the state (``facts.field``), whose relations are
    resolved: a ForeignKey given its model as a string (what makemigrations writes)
    prepares its value through the target field.
    """
    editor = ctx.plan.editor()
    field = facts.field
    if value is NOT_PROVIDED:
        prepared = editor.effective_default(field)
    else:
        prepared = field.get_db_prep_save(value, ctx.plan.connection)
    return str(editor.quote_value(prepared))


# -- building a new field's chain ---------------------------------------------------------

#: Strategies that add follow-up steps to a new field, in the order they run.
FIELD_FOLLOWUPS = (
    "check-not-valid",
    "foreign-key-not-valid",
    "unique-index-first",
    "concurrent-index",
)


def needs_followups(facts: FieldFacts) -> bool:
    return bool(facts.check_sql or facts.foreign_key or facts.unique or facts.index)


def auto_now_default(field: DjangoField) -> Any:
    """What Django writes into existing rows for an ``auto_now``/``auto_now_add`` field
    (``timezone.now``, ``date.today``), None for other fields (and for a TimeField)."""
    if not (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)):
        return None
    if isinstance(field, models.DateTimeField):
        from django.utils import timezone

        return timezone.now
    if isinstance(field, models.DateField):
        import datetime

        return datetime.date.today
    return None


def implicit_empty_default(field: DjangoField) -> bool:
    """A blank CharField/TextField without default: Django fills existing rows with ''."""
    return (
        not field.null
        and not field.has_default()
        and bool(field.blank)
        and bool(field.empty_strings_allowed)
    )


def new_field_strategy(ctx: OpContext) -> str | None:
    """Which strategy owns an ``AddField`` on an existing table (None: it is safe as is).

    The decision table: a volatile database default, or a NOT NULL field whose
    default is a callable -> ``not-null-backfill``; a NOT NULL field with a
    constant default (or the empty string Django gives blank text fields) ->
    ``not-null-default``; otherwise the first of the field's foreign key, CHECK,
    unique and index, whose strategy adds the column alone. Every other concern
    of the field joins as a follow-up (:func:`add_field_chain`).
    """
    op = ctx.operation
    if not isinstance(op, migrations.AddField) or not ctx.existing(op.model_name):
        return None
    if op.field.many_to_many:
        return None
    facts = field_facts(ctx, op.model_name, op.name, op.field)
    if facts.db_default_sql is not None and facts.db_default_volatile:
        return "not-null-backfill"
    if not facts.null and facts.db_default_sql is None:
        if auto_now_default(op.field) is not None and not op.field.has_default():
            return "not-null-backfill"  # Django fills existing rows with now(), then forgets
        if op.field.has_default():
            if callable(op.field.default):
                return "not-null-backfill"
            if facts.unique:
                from ..errors import PlanError

                raise PlanError(
                    f"{facts.model_name}.{facts.name} is unique, and NOT NULL: one default for "
                    f"every existing row ({op.field.default!r}) would repeat in every row after "
                    f"the first of {facts.table}. Add it with null=True and fill it, or give it "
                    "a callable default (one value per row), then plan again."
                )
            return "not-null-default"
        if implicit_empty_default(op.field):
            return "not-null-default"
        return None  # no value for existing rows: Django fails the same way
    if facts.foreign_key:
        return "foreign-key-not-valid"
    if facts.check_sql:
        return "check-not-valid"
    if facts.unique:
        return "unique-index-first"
    if facts.index:
        return "concurrent-index"
    return None


def plain_new_field(ctx: OpContext, strategy: str, what: str, why: str) -> Chain:
    """A nullable new field: the column alone, then the follow-ups of its concerns."""
    op = ctx.operation
    facts = field_facts(ctx, op.model_name, op.name, op.field)
    return add_field_chain(
        ctx,
        strategy,
        facts,
        column_ops=plain_column_ops(ctx, facts, comment=f"The column alone: {what} follow."),
        state_field=op.field,
        slug=f"add_{facts.model_name}_{facts.name}",
        title=f"Add {facts.label} alone ({what} follow)",
        why=why,
    )


def followups(ctx: OpContext, facts: FieldFacts) -> list[FieldPart]:
    parts = []
    for strategy_id in FIELD_FOLLOWUPS:
        cls = _REGISTRY.get(strategy_id)
        if cls is None:
            continue
        part = cls().field_followups(ctx, facts)
        if part is not None:
            parts.append(part)
    return parts


def add_field_chain(
    ctx: OpContext,
    strategy: str,
    facts: FieldFacts,
    *,
    column_ops: list[OpSpec],
    state_field: DjangoField,
    slug: str,
    title: str,
    why: str,
    later: list[Step] | None = None,
    plain_when_possible: bool = False,
    preserve_default: bool = True,
) -> Chain:
    """The column step (state: the final field; database: ``column_ops`` plus inline
    parts of other strategies), then ``later`` steps, then other strategies' steps.

    ``plain_when_possible``: with no follow-ups and a single Django ``AddField`` for the
    column, write that operation alone (no SeparateDatabaseAndState).
    """
    parts = followups(ctx, facts)
    inline = [op for part in parts for op in part.inline]
    locks = frozenset({facts.table}).union(*(p.locks for p in parts))
    state_op = migrations.AddField(
        model_name=facts.model_name,
        name=facts.name,
        field=state_field,
        preserve_default=preserve_default,
    )
    operations: list[OpSpec]
    if (
        plain_when_possible
        and not parts
        and len(column_ops) == 1
        and isinstance(column_ops[0], DjangoOp)
    ):
        operations = [DjangoOp(state_op)]
    else:
        operations = [
            SeparateSpec(state=(DjangoOp(state_op),), database=tuple(column_ops + inline))
        ]
    step = Step(
        strategy=strategy,
        slug=slug,
        phase="expand",
        title=title,
        why=why,
        operations=operations,
        atomic=True,
        locks=locks,
        models=frozenset({facts.key}),
    )
    # This release's later steps, the other strategies' steps, then the steps of a later
    # release (the scheduler moves everything after a later-release step to the record).
    now = [s for s in later or [] if s.release == 1]
    afterwards = [s for s in later or [] if s.release > 1]
    steps = [step, *now]
    notes: list[str] = []
    for part in parts:
        steps.extend(part.steps)
        notes.extend(part.notes)
    steps.extend(afterwards)
    return Chain(strategy=strategy, steps=steps, index=ctx.index, notes=notes)


def state_models(steps: Iterable[Step]) -> frozenset[str]:
    out: set[str] = set()
    for step in steps:
        out |= step.models
    return frozenset(out)


def source_or_op(ctx: OpContext) -> OpSpec:
    return ctx.spec()


__all__ = [
    "NOT_PROVIDED",
    "Chain",
    "FieldFacts",
    "FieldPart",
    "SourceOp",
    "Strategy",
    "add_field_chain",
    "bare_field",
    "clone_field",
    "column_definition",
    "constant_default_sql",
    "field_facts",
    "models",
    "operation_keys",
    "passthrough",
]
