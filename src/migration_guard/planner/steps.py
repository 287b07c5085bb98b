"""The steps plans are made of: one builder per kind of deploy work, shared by the strategies.

A strategy reads as the list of steps it plans; the SQL of each kind of step
lives here, once:

* :func:`validate_constraint_step`: ``VALIDATE CONSTRAINT`` alone in its migration;
* :func:`not_null_steps`: NOT NULL without a long ACCESS EXCLUSIVE (CHECK NOT
  VALID, VALIDATE, SET NOT NULL; PostgreSQL 18: NOT NULL NOT VALID);
* :func:`build_step` and the index helpers: ``CREATE``/``DROP INDEX
  CONCURRENTLY`` with Django's own index names;
* :func:`backfill_step`: a non-atomic RunPython filling a column in batches;
* :func:`column_copy_steps` and :func:`contract_steps`: expand/contract of one
  column (a second column kept in step by a trigger, a backfill, a switch; the
  old column dropped in the next release), for type changes and column renames.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .model import CodeBlock, DjangoOp, OpSpec, RunPythonSpec, RunSQLSpec, SeparateSpec, Step
from .writer import code, render, text

if TYPE_CHECKING:
    from django.db.models import Field, Model

    from .context import PlanContext
    from .strategies.base import FieldFacts

# -- constraints ---------------------------------------------------------------------------


def validate_constraint_step(
    plan: PlanContext,
    *,
    strategy: str,
    table: str,
    name: str,
    key: str,
    slug: str,
    title: str,
    why: str,
) -> Step:
    """``VALIDATE CONSTRAINT`` alone in its migration: a scan under SHARE UPDATE EXCLUSIVE."""
    q = plan.quote
    return Step(
        strategy=strategy,
        slug=slug,
        phase="enforce",
        title=title,
        why=why,
        operations=[
            RunSQLSpec(
                sql=f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {q(name)}",
                reverse=None,
                comment="A validated constraint cannot be made NOT VALID again: nothing to undo.",
                scans=frozenset({table}),
            )
        ],
        separate=True,
        scans=frozenset({table}),
        models=frozenset({key}),
    )


def not_null_steps(
    plan: PlanContext,
    *,
    strategy: str,
    table: str,
    column: str,
    key: str,
    slug: str,
    state_ops: tuple[Any, ...] = (),
    release: int = 1,
    note: str = "",
) -> list[Step]:
    """The two steps that make ``table.column`` NOT NULL without a long lock.

    1. (atomic) ``CHECK (c IS NOT NULL) NOT VALID`` (PostgreSQL 18: ``NOT NULL c NOT
       VALID``): milliseconds of ACCESS EXCLUSIVE, no scan;
    2. (atomic, its own transaction) ``VALIDATE CONSTRAINT`` (SHARE UPDATE EXCLUSIVE),
       then ``SET NOT NULL`` without a scan (PostgreSQL 12+) and the CHECK dropped.
       ``state_ops`` (Django's state) join this step.
    """
    q = plan.quote
    pg18 = plan.pg.has_not_null_not_valid
    name = plan.identifier(table, column, suffix="not_null")
    t, c, n = q(table), q(column), q(name)
    context = dict(table=table, column=column, pg18=pg18, note=note)
    if pg18:
        first = plan.sql(
            f"ALTER TABLE {t} ADD CONSTRAINT {n} NOT NULL {c} NOT VALID",
            f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL",
            locks=(table,),
        )
        second = [plan.sql(f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}", None, scans=(table,))]
    else:
        first = plan.sql(
            f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID",
            f"ALTER TABLE {t} DROP CONSTRAINT {n}",
            locks=(table,),
        )
        second = [
            plan.sql(f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}", None, scans=(table,)),
            plan.sql(
                f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
                f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL",
                comment="No scan: the validated CHECK proves there is no NULL (PostgreSQL 12+).",
                locks=(table,),
            ),
            plan.sql(
                f"ALTER TABLE {t} DROP CONSTRAINT {n}",
                f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID",
                locks=(table,),
            ),
        ]
    ops: list[OpSpec] = list(second)
    if state_ops:
        # VALIDATE stays an operation of its own: its long scan holds no blocking lock.
        ops = [
            second[0],
            SeparateSpec(state=tuple(DjangoOp(o) for o in state_ops), database=tuple(second[1:])),
        ]
    what = "NOT NULL" if pg18 else f"CHECK ({column} IS NOT NULL)"
    return [
        Step(
            strategy=strategy,
            slug=f"{slug}_not_null_not_valid",
            phase="enforce",
            title=f"Add {what} NOT VALID on {table}.{column}",
            why=text("set-not-null", "not_valid", **context),
            operations=[first],
            release=release,
            locks=frozenset({table}),
            models=frozenset({key}),
            needs_major=18 if pg18 else 12,
        ),
        Step(
            strategy=strategy,
            slug=f"{slug}_validate_not_null",
            phase="enforce",
            title=f"Validate, then {table}.{column} SET NOT NULL"
            if not pg18
            else f"Validate NOT NULL on {table}.{column}",
            why=text("set-not-null", "validate", state=bool(state_ops), **context),
            operations=ops,
            release=release,
            separate=True,
            locks=frozenset({table}),
            scans=frozenset({table}),
            models=frozenset({key}),
            needs_major=18 if pg18 else 12,
        ),
    ]


# -- indexes ------------------------------------------------------------------------------

#: (CREATE ... CONCURRENTLY, DROP ... CONCURRENTLY, index name)
IndexSQL = tuple[str, str, str]


def recovery_note(names: Sequence[str], plan: PlanContext) -> str:
    q = plan.quote
    drops = "; ".join(f"DROP INDEX CONCURRENTLY IF EXISTS {q(n)}" for n in names)
    return (
        "If a CONCURRENTLY build fails (lock timeout, deadlock, duplicate values), it leaves "
        f"an INVALID index behind: run {drops}; then migrate again."
    )


def drop_index_sql(plan: PlanContext, name: str) -> str:
    return f"DROP INDEX CONCURRENTLY IF EXISTS {plan.quote(name)}"


_CREATE_INDEX = re.compile(
    r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?", re.I
)


def concurrent_create(sql: str, *, unique: bool = False) -> str:
    """``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS ...`` from Django's CREATE INDEX.

    IF NOT EXISTS makes the statement safe to run again: a deploy that retries the
    statement after a lock timeout (once the INVALID index a failed build leaves
    is dropped) or reruns a half-done non-atomic migration finds no error.
    """
    match = _CREATE_INDEX.match(sql)
    if match is None:  # pragma: no cover - Django always starts with CREATE
        raise ValueError(f"not a CREATE INDEX statement: {sql[:60]}")
    head = "CREATE UNIQUE INDEX" if unique or match.group(1) else "CREATE INDEX"
    return f"{head} CONCURRENTLY IF NOT EXISTS {sql[match.end() :]}"


def field_index_sql(
    plan: PlanContext, model: type[Model], field: Field[Any, Any], *, unique: bool = False
) -> list[IndexSQL]:
    """The index Django gives a field, and its ``_like`` index (varchar/text)."""
    editor = plan.editor()
    suffix = "_uniq" if unique else ""
    name = editor._create_index_name(model._meta.db_table, [field.column], suffix=suffix)
    create = concurrent_create(
        str(editor._create_index_sql(model, fields=[field], name=name, concurrently=True)),
        unique=unique,
    )
    out = [(create, drop_index_sql(plan, name), name)]
    like = like_index_sql(plan, model, field)
    if like is not None:
        out.append(like)
    return out


def like_index_sql(
    plan: PlanContext, model: type[Model], field: Field[Any, Any]
) -> IndexSQL | None:
    db_type = field.db_type(connection=plan.connection) or ""
    if "[" in db_type or getattr(field, "db_collation", None):
        return None
    if db_type.startswith("varchar"):
        opclass = "varchar_pattern_ops"
    elif db_type.startswith("text"):
        opclass = "text_pattern_ops"
    else:
        return None
    editor = plan.editor()
    name = editor._create_index_name(model._meta.db_table, [field.column], suffix="_like")
    create = concurrent_create(
        str(
            editor._create_index_sql(
                model, fields=[field], suffix="_like", opclasses=[opclass], concurrently=True
            )
        )
    )
    return create, drop_index_sql(plan, name), name


def valid_index_check(plan: PlanContext, name: str) -> str:
    """A statement that fails when index ``name`` exists but is INVALID.

    A CONCURRENTLY build that fails (lock timeout, deadlock, duplicate values)
    leaves an INVALID index, which IF NOT EXISTS would then accept: this makes a
    rerun fail with what to do instead of succeeding with an index that is never
    used. A deploy guard that drops the INVALID index before retrying the build
    passes it.
    """
    quoted = plan.quote(name)
    literal = quoted.replace("'", "''")
    return (
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = "  # noqa: S608
        f"to_regclass('{literal}') AND NOT indisvalid) THEN RAISE EXCEPTION "
        f"'index {literal} is INVALID (a CONCURRENTLY build failed): run DROP INDEX "
        f"CONCURRENTLY IF EXISTS {literal}; then migrate again'; END IF; END $$"
    )


def index_op(plan: PlanContext, create_sql: str, name: str, *, create: bool = True) -> RunSQLSpec:
    """Build (or drop) one index CONCURRENTLY, safe to run again; the reverse undoes it."""
    build = (create_sql, valid_index_check(plan, name))
    drop = drop_index_sql(plan, name)
    return plan.sql(build, drop) if create else plan.sql(drop, build)


def build_ops(pairs: Sequence[IndexSQL], plan: PlanContext, *, create: bool = True) -> list[OpSpec]:
    return [index_op(plan, create_sql, name, create=create) for create_sql, _drop, name in pairs]


def build_step(
    plan: PlanContext,
    *,
    strategy: str,
    slug: str,
    title: str,
    why: str,
    operations: list[OpSpec],
    names: Sequence[str],
    key: str,
    release: int = 1,
) -> Step:
    """Index work CONCURRENTLY: a non-atomic step, with the recovery advice in its header."""
    return Step(
        strategy=strategy,
        slug=slug,
        phase="build",
        title=title,
        why=why,
        operations=operations,
        atomic=False,
        release=release,
        models=frozenset({key}),
        notes=(recovery_note(names, plan),) if names else (),
    )


# -- backfills ------------------------------------------------------------------------------


#: Known callables whose value PostgreSQL computes itself (so a backfill can be set-based):
#: ``(module, qualname)`` -> (SQL, PostgreSQL major it needs, column types it suits).
SQL_CALLABLES: dict[tuple[str, str], tuple[str, int, tuple[str, ...]]] = {
    ("uuid", "uuid4"): ("gen_random_uuid()", 13, ("uuid",)),
    ("django.utils.timezone", "now"): ("now()", 12, ("timestamp with time zone",)),
}


@dataclasses.dataclass(frozen=True)
class Fill:
    """What a backfill writes into existing rows (JSON-compatible: the plan record keeps it).

    ``expression`` is SQL (a column, a cast, ``DEFAULT``, ``gen_random_uuid()``, or
    ``%s`` for the constant ``value_source`` prepared by the field): the rows are
    updated set-based, one keyset range per transaction. Without it the value is
    computed in Python per row (``value_source`` a callable's source, else the
    field's default) and written with the ORM in bulk.
    """

    app_label: str
    model_class: str
    field_name: str
    table: str
    column: str
    #: Primary key columns (several for a composite key).
    key: tuple[str, ...]
    expression: str | None
    #: SQL condition of the rows still to fill.
    todo: str
    value_source: str | None = None
    value_imports: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fill:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["key"] = tuple(values.get("key", ()))
        values["value_imports"] = tuple(values.get("value_imports", ()))
        return cls(**values)

    @property
    def set_based(self) -> bool:
        return self.expression is not None

    @classmethod
    def null_rows_of(
        cls,
        plan: PlanContext,
        facts: FieldFacts,
        expression: str | None,
        value_source: str | None = None,
        value_imports: tuple[str, ...] = (),
    ) -> Fill:
        """Fill the rows where ``facts``' column is still NULL."""
        return cls(
            app_label=facts.app_label,
            model_class=facts.model_class,
            field_name=facts.name,
            table=facts.table,
            column=facts.column,
            key=facts.pk_columns,
            expression=expression,
            todo=f"{plan.quote(facts.column)} IS NULL",
            value_source=value_source,
            value_imports=value_imports,
        )


def sql_fill_expression(plan: PlanContext, default: Any, db_type: str) -> str | None:
    """The SQL that computes ``default()`` in PostgreSQL, when it is one of SQL_CALLABLES."""
    module = getattr(default, "__module__", None)
    name = getattr(default, "__qualname__", None)
    known = SQL_CALLABLES.get((str(module), str(name)))
    if known is None:
        return None
    sql, major, types = known
    if plan.pg.major < major or db_type not in types:
        return None
    return sql


def backfill_step(
    plan: PlanContext,
    fill: Fill,
    *,
    strategy: str,
    model_key: str,
    why: str,
    title: str,
    slug: str,
    function: str,
    release: int = 1,
) -> Step:
    """A non-atomic RunPython step that fills ``fill.column`` of existing rows in batches.

    Set-based (``fill.expression``): one ``UPDATE`` per keyset range of the primary
    key, each in its own transaction, sized to hold its row locks about 100 ms.
    In Python otherwise: the same batches through the ORM, ``bulk_update``.
    """
    q = plan.quote
    helper = "backfill_in_batches" if fill.set_based else "backfill_in_python"
    assignment = None
    if fill.expression is not None:
        assignment = f"{q(fill.column)} = {fill.expression}"
    body = code(
        "",
        "backfill",
        function=function,
        docstring=f"Fill {fill.table}.{fill.column} for existing rows that have no value yet.",
        app_label=fill.app_label,
        model_class=fill.model_class,
        field_name=fill.field_name,
        table=fill.table,
        key=list(fill.key),
        expression=fill.expression,
        assignment=assignment,
        todo=fill.todo,
        value_source=fill.value_source,
    )
    return Step(
        strategy=strategy,
        slug=slug,
        phase="backfill",
        title=title,
        why=why,
        operations=[RunPythonSpec(code=function)],
        atomic=False,
        data=True,
        release=release,
        models=frozenset({model_key}),
        fills=frozenset({(fill.table, fill.column)}),
        code=(
            CodeBlock(
                name="BATCH_SIZE",
                text=render("backfill_settings.py.j2", batch_size=plan.batch_size),
            ),
            CodeBlock(
                name=helper,
                text=code("", helper),
                imports=frozenset(
                    {"import sys", "import time", "from django.db import transaction"}
                ),
            ),
            CodeBlock(name=function, text=body, imports=frozenset(fill.value_imports)),
        ),
    )


# -- expand/contract of one column ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ColumnCopy:
    """A second column kept in step with the one the previous release uses.

    ``mode`` ``type``: the new column has the new type; with ``swap`` the switch
    swaps the names (the model keeps its column name), without it the model moves
    to the new column through ``db_column`` and a trigger keeps both in step both
    ways until the contract. ``rename``: the new column has the new name, the
    trigger copies both ways, the switch is Django's state only.
    """

    strategy: str
    mode: str
    app_label: str
    model_name: str
    model_class: str
    field_name: str
    table: str
    #: Primary key columns (the backfill's keyset).
    pk_columns: tuple[str, ...]
    #: The column the previous release uses, and the one being added.
    old_column: str
    new_column: str
    old_type: str
    new_type: str
    not_null: bool
    default_sql: str | None = None
    #: SQL condition every value of the old column must meet to fit the new type without
    #: loss (``char_length(x) <= 100``...); None when every value fits.
    fits: str | None = None
    swap: bool = True

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.model_name}.{self.field_name.lower()}"

    @property
    def two_way(self) -> bool:
        """Both columns stay in use until the contract (the trigger copies both ways)."""
        return self.mode == "rename" or not self.swap

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnCopy:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["pk_columns"] = tuple(values.get("pk_columns") or (data.get("pk_column") or "id",))
        return cls(**values)

    def to_new(self, source: str) -> str:
        """``source`` (a value of the old column) as the new column's type."""
        return f"{source}::{self.new_type}" if self.old_type != self.new_type else source

    def to_old(self, source: str) -> str:
        return f"{source}::{self.old_type}" if self.old_type != self.new_type else source


@dataclasses.dataclass(frozen=True)
class CopyTexts:
    """The header texts and titles of one expand/contract chain (the strategy's words)."""

    expand_why: str
    expand_title: str
    expand_slug: str
    backfill_why: str
    switch_why: str
    switch_title: str
    switch_slug: str
    contract_title: str
    contract_slug: str
    fits_why: str = ""


def _copy_names(plan: PlanContext, copy: ColumnCopy) -> dict[str, str]:
    base = copy.old_column if copy.mode == "type" else copy.new_column
    return {
        "function": plan.identifier(copy.table, base, suffix="sync"),
        "trigger": plan.identifier(copy.table, base, suffix="sync"),
        "check": plan.identifier(copy.table, copy.new_column, suffix="not_null"),
        "fits": plan.identifier(copy.table, copy.old_column, suffix="fits"),
        "old_kept": plan.identifier(copy.old_column, suffix="_old"),
    }


def trigger_sql(plan: PlanContext, copy: ColumnCopy) -> tuple[str, str]:
    """(CREATE FUNCTION, CREATE TRIGGER) keeping the new column in step.

    One way (a type change with swap): the new column follows the old one, which
    the previous release writes. Both ways (a rename, or a type change without
    swap, where each release writes its own column): the column a statement
    changed is copied into the other.
    """
    q = plan.quote
    names = _copy_names(plan, copy)
    old, new = q(copy.old_column), q(copy.new_column)
    if not copy.two_way:
        body = f"NEW.{new} := {copy.to_new(f'NEW.{old}')};\n  RETURN NEW;"
    else:
        body = (
            "IF TG_OP = 'INSERT' THEN\n"
            f"    IF NEW.{new} IS NULL THEN NEW.{new} := {copy.to_new(f'NEW.{old}')};\n"
            f"    ELSIF NEW.{old} IS NULL THEN NEW.{old} := {copy.to_old(f'NEW.{new}')};\n"
            "    END IF;\n"
            f"  ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} THEN\n"
            f"    NEW.{old} := {copy.to_old(f'NEW.{new}')};\n"
            f"  ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} THEN\n"
            f"    NEW.{new} := {copy.to_new(f'NEW.{old}')};\n"
            "  END IF;\n"
            "  RETURN NEW;"
        )
    function = (
        f"CREATE FUNCTION {q(names['function'])}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  {body}\nEND\n$$"
    )
    trigger = (
        f"CREATE TRIGGER {q(names['trigger'])} BEFORE INSERT OR UPDATE ON {q(copy.table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {q(names['function'])}()"
    )
    return function, trigger


def _drop_trigger(plan: PlanContext, copy: ColumnCopy) -> tuple[str, str]:
    q = plan.quote
    names = _copy_names(plan, copy)
    return (
        f"DROP TRIGGER IF EXISTS {q(names['trigger'])} ON {q(copy.table)}",
        f"DROP FUNCTION IF EXISTS {q(names['function'])}()",
    )


def _expand_step(plan: PlanContext, copy: ColumnCopy, texts: CopyTexts) -> Step:
    q = plan.quote
    names = _copy_names(plan, copy)
    t, new = q(copy.table), q(copy.new_column)
    forward: list[str] = []
    backward: list[str] = [
        *_drop_trigger(plan, copy),
        f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}",
    ]
    if copy.fits:
        # First, so that no write of the previous release can slip a value past it.
        forward.append(
            f"ALTER TABLE {t} ADD CONSTRAINT {q(names['fits'])} CHECK ({copy.fits}) NOT VALID"
        )
        backward.append(f"ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {q(names['fits'])}")
    default = f" DEFAULT {copy.default_sql}" if copy.default_sql else ""
    forward += [
        f"ALTER TABLE {t} ADD COLUMN {new} {copy.new_type}{default} NULL",
        *trigger_sql(plan, copy),
    ]
    if copy.not_null:
        forward.append(
            f"ALTER TABLE {t} ADD CONSTRAINT {q(names['check'])} "
            f"CHECK ({new} IS NOT NULL) NOT VALID"
        )
    return Step(
        strategy=copy.strategy,
        slug=texts.expand_slug,
        phase="expand",
        title=texts.expand_title,
        why=texts.expand_why,
        operations=[plan.sql(tuple(forward), tuple(backward), locks=(copy.table,))],
        locks=frozenset({copy.table}),
        models=frozenset({copy.key}),
    )


def _copy_backfill_step(plan: PlanContext, copy: ColumnCopy, *, why: str) -> Step:
    q = plan.quote
    old, new = q(copy.old_column), q(copy.new_column)
    fill = Fill(
        app_label=copy.app_label,
        model_class=copy.model_class,
        field_name=copy.field_name,
        table=copy.table,
        column=copy.new_column,
        key=copy.pk_columns,
        expression=copy.to_new(old),
        todo=f"{new} IS NULL AND {old} IS NOT NULL",
    )
    return backfill_step(
        plan,
        fill,
        strategy=copy.strategy,
        model_key=copy.key,
        why=why,
        title=f"Copy {copy.table}.{copy.old_column} into {copy.new_column} in batches",
        slug=f"copy_{copy.model_name}_{copy.field_name}",
        function=f"copy_{copy.model_name}_{copy.field_name}",
    )


def _validate_copy_step(plan: PlanContext, copy: ColumnCopy) -> Step:
    names = _copy_names(plan, copy)
    return validate_constraint_step(
        plan,
        strategy=copy.strategy,
        table=copy.table,
        name=names["check"],
        key=copy.key,
        slug=f"validate_{copy.model_name}_{copy.field_name}_copy",
        title=f"Validate CHECK ({copy.new_column} IS NOT NULL) on {copy.table}",
        why=text(copy.strategy, "validate", table=copy.table, column=copy.new_column),
    )


def _validate_fits_step(plan: PlanContext, copy: ColumnCopy, texts: CopyTexts) -> Step:
    names = _copy_names(plan, copy)
    return validate_constraint_step(
        plan,
        strategy=copy.strategy,
        table=copy.table,
        name=names["fits"],
        key=copy.key,
        slug=f"validate_{copy.model_name}_{copy.field_name}_fits",
        title=f"Validate that every {copy.table}.{copy.old_column} fits {copy.new_type}",
        why=texts.fits_why,
    )


def _switch_step(
    plan: PlanContext, copy: ColumnCopy, *, state_ops: tuple[Any, ...], texts: CopyTexts
) -> Step:
    q = plan.quote
    names = _copy_names(plan, copy)
    t, old, new = q(copy.table), q(copy.old_column), q(copy.new_column)
    check = q(names["check"])
    forward: list[str] = []
    backward: list[str] = []
    if copy.not_null:
        forward += [
            f"ALTER TABLE {t} ALTER COLUMN {new} SET NOT NULL",
            f"ALTER TABLE {t} DROP CONSTRAINT {check}",
        ]
    if not copy.two_way:
        kept = q(names["old_kept"])
        forward += list(_drop_trigger(plan, copy))
        if copy.not_null:
            forward.append(f"ALTER TABLE {t} ALTER COLUMN {old} DROP NOT NULL")
        forward += [
            f"ALTER TABLE {t} RENAME COLUMN {old} TO {kept}",
            f"ALTER TABLE {t} RENAME COLUMN {new} TO {old}",
        ]
        # Back to the state before the switch. Rows written since the switch (their new
        # value is not the copy of the old one) get it copied back; every other row keeps
        # its original value untouched.
        backward += [
            f"ALTER TABLE {t} RENAME COLUMN {old} TO {new}",
            f"ALTER TABLE {t} RENAME COLUMN {kept} TO {old}",
            f"UPDATE {t} SET {old} = {copy.to_old(new)} "  # noqa: S608
            f"WHERE {new} IS DISTINCT FROM {copy.to_new(old)}",
        ]
        if copy.not_null:
            backward.append(f"ALTER TABLE {t} ALTER COLUMN {old} SET NOT NULL")
        backward += list(trigger_sql(plan, copy))
    if copy.not_null:
        backward += [
            f"ALTER TABLE {t} ALTER COLUMN {new} DROP NOT NULL",
            f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({new} IS NOT NULL) NOT VALID",
        ]
    database: tuple[OpSpec, ...] = ()
    if forward:
        database = (plan.sql(tuple(forward), tuple(backward), locks=(copy.table,)),)
    if not copy.two_way:
        comment = (
            f"The columns swap names in one transaction: {copy.old_column} exists "
            "before and after, with the new type."
        )
    elif database:
        comment = f"Only {copy.new_column} changes: the trigger keeps both columns in step."
    else:
        comment = "No SQL: the trigger keeps both columns in step."
    return Step(
        strategy=copy.strategy,
        slug=texts.switch_slug,
        phase="switch",
        title=texts.switch_title,
        why=texts.switch_why,
        operations=[
            SeparateSpec(
                state=tuple(DjangoOp(o) for o in state_ops), database=database, comment=comment
            )
        ],
        separate=True,
        locks=frozenset({copy.table}) if database else frozenset(),
        models=frozenset({copy.key}),
    )


def column_copy_steps(
    plan: PlanContext, copy: ColumnCopy, *, state_ops: tuple[Any, ...], texts: CopyTexts
) -> list[Step]:
    """Release 1 of an expand/contract and the placeholder of release 2.

    expand (new column, trigger, CHECK NOT VALID) -> validate that the old values fit
    the new type (narrowing changes) -> backfill -> validate NOT NULL -> switch;
    release 2 (contract) is rebuilt later by :func:`contract_steps`.
    """
    steps = [_expand_step(plan, copy, texts)]
    if copy.fits:
        steps.append(_validate_fits_step(plan, copy, texts))
    steps.append(_copy_backfill_step(plan, copy, why=texts.backfill_why))
    if copy.not_null:
        steps.append(_validate_copy_step(plan, copy))
    steps.append(_switch_step(plan, copy, state_ops=state_ops, texts=texts))
    steps.append(
        Step(
            strategy=copy.strategy,
            slug=texts.contract_slug,
            phase="contract",
            title=texts.contract_title,
            why="",
            operations=[],
            release=2,
            resume={"kind": "contract", "copy": copy.as_json()},
            models=frozenset({copy.key}),
        )
    )
    return steps


def contract_steps(plan: PlanContext, data: Mapping[str, Any], *, why: str) -> list[Step]:
    """Release 2 of an expand/contract: the old column (and the trigger) go."""
    copy = ColumnCopy.from_json(data["copy"])
    q = plan.quote
    names = _copy_names(plan, copy)
    t = q(copy.table)
    if not copy.two_way:
        dropped = names["old_kept"]
        forward: tuple[str, ...] = (f"ALTER TABLE {t} DROP COLUMN IF EXISTS {q(dropped)}",)
        backward: tuple[str, ...] = (
            f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {q(dropped)} {copy.old_type} NULL",
        )
    else:
        dropped = copy.old_column
        forward = (
            *_drop_trigger(plan, copy),
            f"ALTER TABLE {t} DROP COLUMN IF EXISTS {q(dropped)}",
        )
        backward = (
            f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {q(dropped)} {copy.old_type} NULL",
            f"UPDATE {t} SET {q(dropped)} = {copy.to_old(q(copy.new_column))}",  # noqa: S608
            *trigger_sql(plan, copy),
        )
    return [
        Step(
            strategy=copy.strategy,
            slug=f"drop_{copy.model_name}_{dropped}"[:60],
            phase="contract",
            title=f"Drop the old column {copy.table}.{dropped}",
            why=why,
            operations=[
                plan.sql(
                    forward if len(forward) > 1 else forward[0],
                    backward if len(backward) > 1 else backward[0],
                    comment="The reverse restores the column"
                    + ("; the switch's reverse refills it." if not copy.two_way else ".")
                    + "\nThe code left this column in the previous release (the switch): "
                    "no running release uses it.",
                    locks=(copy.table,),
                )
            ],
            locks=frozenset({copy.table}),
            models=frozenset({copy.key}),
        )
    ]
