"""Unique constraints: the unique index built CONCURRENTLY first, then ADD CONSTRAINT USING INDEX.

Answers ``add-unique-constraint``. ``ADD CONSTRAINT ... UNIQUE`` builds its
index under ACCESS EXCLUSIVE: nobody reads or writes the table meanwhile.

1. (non-atomic) ``CREATE UNIQUE INDEX CONCURRENTLY <name> ON t (cols)``: SHARE
   UPDATE EXCLUSIVE, reads and writes go on.
2. (atomic) ``ALTER TABLE t ADD CONSTRAINT <name> UNIQUE USING INDEX <name>``:
   catalog-only, milliseconds of ACCESS EXCLUSIVE. Django's state gets the
   constraint (SeparateDatabaseAndState).

Covers ``AddConstraint(UniqueConstraint)``, ``unique=True`` added by an
``AlterField`` or on a new field (with the ``_like`` index Django adds for
varchar/text), and ``unique_together`` (``AlterUniqueTogether``), with the names
Django gives them. A unique constraint with a condition, expressions or
``include`` is an index in PostgreSQL: step 1 alone, with the state.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.models import UniqueConstraint

from ..context import DjangoField, DjangoModel, OpContext, PlanContext
from ..model import Chain, DjangoOp, OpSpec, SeparateSpec, Step
from ..steps import (
    build_ops,
    build_step,
    concurrent_create,
    field_index_sql,
    index_op,
    like_index_sql,
)
from ..writer import text
from .base import (
    FieldFacts,
    FieldPart,
    Strategy,
    new_field_strategy,
    plain_new_field,
    together,
)
from .set_not_null import altered_field, db_kwargs_differ

ID = "unique-index-first"


def _plain(constraint: UniqueConstraint) -> bool:
    return bool(constraint.fields) and not (
        constraint.condition
        or constraint.expressions
        or getattr(constraint, "include", None)
        or getattr(constraint, "opclasses", None)
    )


def constraint_step(
    plan: PlanContext,
    *,
    table: str,
    names: list[str],
    deferrable: str = "",
    state_ops: tuple[Any, ...] = (),
    extra_database: tuple[OpSpec, ...] = (),
    key: str,
    slug: str,
) -> Step:
    q = plan.quote
    ops = []
    for name in names:
        ops.append(
            plan.sql(
                f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} UNIQUE USING INDEX {q(name)}"
                + deferrable,
                f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}",
                locks=(table,),
            )
        )
    database = (*extra_database, *ops)
    operations: list[OpSpec] = list(database)
    if state_ops:
        operations = [SeparateSpec(state=tuple(DjangoOp(o) for o in state_ops), database=database)]
    return Step(
        strategy=ID,
        slug=slug,
        phase="enforce",
        title=f"ADD CONSTRAINT {', '.join(names)} UNIQUE USING INDEX on {table}",
        why=text(ID, "using_index", table=table, names=names, state=bool(state_ops)),
        operations=operations,
        separate=True,
        locks=frozenset({table}),
        models=frozenset({key}),
    )


def _deferrable(constraint: Any) -> str:
    deferrable = getattr(constraint, "deferrable", None)
    if deferrable is None:
        return ""
    return f" DEFERRABLE INITIALLY {'DEFERRED' if deferrable.name == 'DEFERRED' else 'IMMEDIATE'}"


def unique_index_sql(
    plan: PlanContext,
    model: DjangoModel,
    fields: list[DjangoField],
    name: str,
    *,
    nulls_distinct: bool | None = None,
) -> str:
    editor = plan.editor()
    sql = concurrent_create(
        str(editor._create_index_sql(model, fields=fields, name=name, concurrently=True)),
        unique=True,
    )
    if nulls_distinct is False:
        sql += " NULLS NOT DISTINCT"
    return sql


class UniqueIndexFirst(Strategy):
    """Unique constraint: CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT USING INDEX."""

    id = ID
    rules = ("add-unique-constraint",)
    summary = "CREATE UNIQUE INDEX CONCURRENTLY (non-atomic), then ADD CONSTRAINT ... USING INDEX"
    priority = 45

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.AddField):
            return new_field_strategy(ctx) == ID
        if isinstance(op, migrations.AddConstraint):
            return isinstance(op.constraint, UniqueConstraint) and ctx.existing(op.model_name)
        if isinstance(op, migrations.AlterUniqueTogether):
            if not ctx.existing(op.name):
                return False
            olds, news = self._together(ctx)
            return bool(news - olds)
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        changed = db_kwargs_differ(old, new)
        return (
            not old.unique
            and new.unique
            and not new.primary_key
            and changed <= {"unique", "db_index"}
            and not new.is_relation
        )

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        if isinstance(op, migrations.AddField):
            return plain_new_field(
                ctx, ID, "its unique index and constraint", text(ID, "new_field")
            )
        if isinstance(op, migrations.AddConstraint):
            return self._add_constraint(ctx)
        if isinstance(op, migrations.AlterUniqueTogether):
            return self._unique_together(ctx)
        return self._alter_field(ctx)

    def _together(self, ctx: OpContext) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
        op = ctx.operation
        key = (ctx.app_label, op.name_lower)
        olds = together(ctx.before, *key, "unique_together")
        news = together(ctx.after, *key, "unique_together")
        return olds, news

    def _add_constraint(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        constraint = op.constraint
        model = ctx.model_after(op.model_name)
        table = model._meta.db_table
        key = f"{ctx.app_label}.{model._meta.model_name}"
        editor = ctx.plan.editor()
        name = constraint.name
        if _plain(constraint):
            fields = [model._meta.get_field(f) for f in constraint.fields]
            create = unique_index_sql(
                ctx.plan,
                model,
                fields,
                name,
                nulls_distinct=getattr(constraint, "nulls_distinct", None),
            )
        else:
            create = concurrent_create(str(constraint.create_sql(model, editor)), unique=True)
        build = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"{constraint.name}_index"[:60],
            title=f"Build the unique index {name} on {table} CONCURRENTLY",
            why=text(ID, "build", table=table, name=name, plain=_plain(constraint)),
            operations=[index_op(ctx.plan, create, name)],
            names=[name],
            key=key,
        )
        if not _plain(constraint):
            build.operations = [
                SeparateSpec(state=(DjangoOp(op),), database=tuple(build.operations))
            ]
            return Chain(strategy=ID, steps=[build], index=ctx.index)
        enforce = constraint_step(
            ctx.plan,
            table=table,
            names=[name],
            deferrable=_deferrable(constraint),
            state_ops=(op,),
            key=key,
            slug=f"{constraint.name}_using_index"[:60],
        )
        return Chain(strategy=ID, steps=[build, enforce], index=ctx.index)

    def _alter_field(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        old, new = altered_field(ctx)  # type: ignore[misc]
        model = ctx.model_after(op.model_name)
        table = model._meta.db_table
        pairs = field_index_sql(ctx.plan, model, new, unique=True)
        if old.db_index:  # the _like index exists already
            pairs = pairs[:1]
        name = pairs[0][2]
        key = f"{ctx.app_label}.{model._meta.model_name}.{op.name.lower()}"
        build = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"{model._meta.model_name}_{op.name}_unique_index",
            title=f"Build the unique index of {table}.{new.column} CONCURRENTLY",
            why=text(ID, "build", table=table, name=name, plain=True),
            operations=list(build_ops(pairs, ctx.plan)),
            names=[p[2] for p in pairs],
            key=key,
        )
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=op.field)
        enforce = constraint_step(
            ctx.plan,
            table=table,
            names=[name],
            state_ops=(state,),
            key=key,
            slug=f"{model._meta.model_name}_{op.name}_unique",
        )
        return Chain(strategy=ID, steps=[build, enforce], index=ctx.index)

    def _unique_together(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        olds, news = self._together(ctx)
        model = ctx.model_after(op.name)
        table = model._meta.db_table
        editor = ctx.plan.editor()
        key = f"{ctx.app_label}.{op.name_lower}"
        creates: list[OpSpec] = []
        names: list[str] = []
        for fields in sorted(news - olds):
            columns = [model._meta.get_field(f).column for f in fields]
            name = editor._create_index_name(table, columns, suffix="_uniq")
            sql = unique_index_sql(
                ctx.plan, model, [model._meta.get_field(f) for f in fields], name
            )
            creates.append(index_op(ctx.plan, sql, name))
            names.append(name)
        build = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"{op.name_lower}_unique_together_index",
            title=f"Build the unique index(es) of unique_together on {table} CONCURRENTLY",
            why=text(ID, "build", table=table, name=", ".join(names), plain=True),
            operations=creates,
            names=names,
            key=key,
        )
        extra: tuple[OpSpec, ...] = ()
        if olds - news:
            # Django drops the removed ones (it looks their names up); brief and catalog-only.
            extra = (DjangoOp(migrations.AlterUniqueTogether(op.name, olds & news)),)
        state_op = op
        enforce = constraint_step(
            ctx.plan,
            table=table,
            names=names,
            state_ops=(state_op,),
            extra_database=extra,
            key=key,
            slug=f"{op.name_lower}_unique_together",
        )
        return Chain(strategy=ID, steps=[build, enforce], index=ctx.index)

    def field_followups(self, ctx: OpContext, facts: FieldFacts) -> FieldPart | None:
        if not facts.unique:
            return None
        model = ctx.model_after(facts.model_name)
        pairs = field_index_sql(ctx.plan, model, facts.field, unique=True)
        like = None if facts.foreign_key else like_index_sql(ctx.plan, model, facts.field)
        pairs = pairs[:1] + ([like] if like else [])
        name = pairs[0][2]
        build = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"{facts.model_name}_{facts.name}_unique_index",
            title=f"Build the unique index of {facts.label} CONCURRENTLY",
            why=text(ID, "build", table=facts.table, name=name, plain=True),
            operations=list(build_ops(pairs, ctx.plan)),
            names=[p[2] for p in pairs],
            key=facts.key,
        )
        enforce = constraint_step(
            ctx.plan,
            table=facts.table,
            names=[name],
            key=facts.key,
            slug=f"{facts.model_name}_{facts.name}_unique",
        )
        return FieldPart(steps=[build, enforce])
