"""Foreign keys: the column, the constraint NOT VALID, the index CONCURRENTLY, VALIDATE later.

Answers ``add-foreign-key-validating`` (and the ``add-index-non-concurrent``
of the key's index). Django's AddField adds the column, the constraint (which
scans the table under SHARE ROW EXCLUSIVE on both tables) and the index (SHARE:
writes wait for the build) in one transaction.

1. (atomic) the column, nullable, without constraint or index; then ``ADD
   CONSTRAINT ... FOREIGN KEY ... NOT VALID``: enforced for new rows, no scan.
   Django's state gets the ForeignKey (SeparateDatabaseAndState).
2. (non-atomic) the key's index, ``CREATE INDEX CONCURRENTLY``, Django's name.
3. (atomic) ``VALIDATE CONSTRAINT``: SHARE UPDATE EXCLUSIVE on the table, ROW
   SHARE on the referenced one; reads and writes go on while rows are checked.

Also a new field's follow-up, when another strategy owns its column.
"""

from __future__ import annotations

from django.db import migrations

from ..context import DjangoField, DjangoModel, OpContext, PlanContext
from ..model import Chain, DjangoOp, OpSpec, SeparateSpec, Step
from ..steps import build_ops, build_step, field_index_sql, validate_constraint_step
from ..writer import text
from .base import (
    FieldFacts,
    FieldPart,
    Strategy,
    add_field_chain,
    field_facts,
    new_field_strategy,
    plain_column_ops,
)
from .set_not_null import altered_field, db_kwargs_differ

ID = "foreign-key-not-valid"
SUFFIX = "_fk_%(to_table)s_%(to_column)s"


def fk_sql(plan: PlanContext, model: DjangoModel, field: DjangoField) -> tuple[str, str, str]:
    """(ADD CONSTRAINT ... NOT VALID, its reverse, the constraint name) as Django names it."""
    editor = plan.editor()
    statement = editor._create_fk_sql(model, field, SUFFIX)
    name = str(editor._fk_constraint_name(model, field, SUFFIX)).strip('"')
    table = plan.quote(model._meta.db_table)
    return f"{statement} NOT VALID", f"ALTER TABLE {table} DROP CONSTRAINT {plan.quote(name)}", name


def validate_step(
    plan: PlanContext, *, table: str, name: str, key: str, slug: str, to_table: str
) -> Step:
    return validate_constraint_step(
        plan,
        strategy=ID,
        table=table,
        name=name,
        key=key,
        slug=slug,
        title=f"Validate the foreign key {name}",
        why=text(ID, "validate", table=table, to_table=to_table),
    )


class ForeignKeyNotValid(Strategy):
    """New foreign key: column, constraint NOT VALID, index CONCURRENTLY, then VALIDATE."""

    id = ID
    rules = ("add-foreign-key-validating",)
    summary = "column + FOREIGN KEY NOT VALID, index CONCURRENTLY, then VALIDATE CONSTRAINT"
    priority = 40

    def matches(self, ctx: OpContext) -> bool:
        if isinstance(ctx.operation, migrations.AlterField):
            return _constraint_added(ctx)
        return new_field_strategy(ctx) == ID

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        if isinstance(op, migrations.AlterField):
            return self._constraint_on_existing_column(ctx)
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        target = facts.field.target_field.model._meta.db_table
        return add_field_chain(
            ctx,
            ID,
            facts,
            column_ops=plain_column_ops(
                ctx, facts, comment="The column alone: no constraint, no index yet."
            ),
            state_field=op.field,
            slug=f"add_{facts.model_name}_{facts.name}",
            title=f"Add {facts.label} and its foreign key to {target} NOT VALID",
            why=text(ID, "expand", table=facts.table, column=facts.column, to_table=target),
        )

    def _constraint_on_existing_column(self, ctx: OpContext) -> Chain:
        """db_constraint=True on a column that exists: NOT VALID (+ its index), then VALIDATE."""
        op = ctx.operation
        plan = ctx.plan
        old, _new = altered_field(ctx)  # type: ignore[misc]
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        model = ctx.model_after(op.model_name)
        add, drop, name = fk_sql(plan, model, facts.field)
        target = facts.field.target_field.model._meta.db_table
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=op.field)
        steps: list[Step] = []
        if facts.index and not old.db_index:
            steps.append(_index_step(plan, model, facts))
        steps.append(
            Step(
                strategy=ID,
                slug=f"{facts.model_name}_{facts.name}_fk_not_valid",
                phase="expand",
                title=f"Add the foreign key of {facts.label} to {target} NOT VALID",
                why=text(
                    ID,
                    "expand",
                    table=facts.table,
                    column=facts.column,
                    to_table=target,
                    existing=True,
                ),
                operations=[
                    SeparateSpec(
                        state=(DjangoOp(state),),
                        database=(plan.sql(add, drop, locks=(facts.table, target)),),
                    )
                ],
                locks=frozenset({facts.table, target}),
                models=frozenset({facts.key}),
            )
        )
        steps.append(_validate_step(plan, facts, name, target))
        return Chain(strategy=ID, steps=steps, index=ctx.index)

    def field_followups(self, ctx: OpContext, facts: FieldFacts) -> FieldPart | None:
        if not facts.foreign_key:
            return None
        plan = ctx.plan
        model = ctx.model_after(facts.model_name)
        field = facts.field
        add, drop, name = fk_sql(plan, model, field)
        target = field.target_field.model._meta.db_table
        inline: list[OpSpec] = [
            plan.sql(
                add,
                drop,
                comment="Checked for new rows from now on; existing rows are validated later.",
                locks=(facts.table, target),
            )
        ]
        steps: list[Step] = []
        if facts.index and not facts.unique:
            steps.append(_index_step(plan, model, facts))
        steps.append(_validate_step(plan, facts, name, target))
        return FieldPart(inline=inline, steps=steps, locks=frozenset({facts.table, target}))


def _constraint_added(ctx: OpContext) -> bool:
    """An AlterField that only turns on the foreign key constraint of an existing column."""
    fields = altered_field(ctx)
    if fields is None:
        return False
    old, new = fields
    is_fk = bool(new.is_relation and (new.many_to_one or new.one_to_one))
    return (
        is_fk
        and bool(getattr(new, "db_constraint", False))
        and not getattr(old, "db_constraint", True)
        and db_kwargs_differ(old, new) <= {"db_constraint", "db_index"}
        and not (new.unique and not old.unique)
    )


def _index_step(plan: PlanContext, model: DjangoModel, facts: FieldFacts) -> Step:
    """The foreign key's index, built CONCURRENTLY before the constraint is added."""
    pairs = field_index_sql(plan, model, facts.field)[:1]
    return build_step(
        plan,
        strategy=ID,
        slug=f"index_{facts.model_name}_{facts.name}",
        title=f"Build the index of {facts.label} CONCURRENTLY",
        why=text(ID, "index", table=facts.table, column=facts.column, name=pairs[0][2]),
        operations=list(build_ops(pairs, plan)),
        names=[pairs[0][2]],
        key=facts.key,
    )


def _validate_step(plan: PlanContext, facts: FieldFacts, name: str, target: str) -> Step:
    return validate_step(
        plan,
        table=facts.table,
        name=name,
        key=facts.key,
        slug=f"validate_{facts.model_name}_{facts.name}_fk",
        to_table=target,
    )
