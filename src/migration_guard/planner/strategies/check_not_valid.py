"""CHECK constraints added NOT VALID, validated in a later migration.

Answers ``add-check-constraint-validating`` and ``add-column-check-scan``.
``ADD CONSTRAINT ... CHECK`` (and an ``ADD COLUMN`` whose type brings a CHECK,
such as PositiveIntegerField) scans the table under ACCESS EXCLUSIVE.

1. (atomic) ``ADD CONSTRAINT ... CHECK (...) NOT VALID``: enforced for new and
   updated rows, no scan. Django's state gets the constraint or the field.
2. (atomic, its own transaction) ``VALIDATE CONSTRAINT``: SHARE UPDATE
   EXCLUSIVE, reads and writes go on.

Covers ``AddConstraint(CheckConstraint)``, a new field whose type has a CHECK
(the column is added without it, as ``<table>_<column>_check``, the name
PostgreSQL gives an inline one), and an ``AlterField`` that only adds such a
CHECK (IntegerField -> PositiveIntegerField).
"""

from __future__ import annotations

from django.db import migrations
from django.db.models import CheckConstraint

from ..context import OpContext, PlanContext
from ..model import Chain, DjangoOp, OpSpec, RunSQLSpec, SeparateSpec, Step
from ..steps import validate_constraint_step
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

ID = "check-not-valid"


def not_valid_ops(
    plan: PlanContext, table: str, name: str, check: str, *, comment: str = ""
) -> RunSQLSpec:
    q = plan.quote
    return plan.sql(
        f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} CHECK ({check}) NOT VALID",
        f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}",
        comment=comment,
        locks=(table,),
    )


def validate_step(plan: PlanContext, *, table: str, name: str, key: str, slug: str) -> Step:
    return validate_constraint_step(
        plan,
        strategy=ID,
        table=table,
        name=name,
        key=key,
        slug=slug,
        title=f"Validate the CHECK constraint {name}",
        why=text(ID, "validate", table=table, name=name),
    )


class CheckNotValid(Strategy):
    """CHECK constraint: ADD ... NOT VALID, then VALIDATE CONSTRAINT in its own transaction."""

    id = ID
    rules = ("add-check-constraint-validating", "add-column-check-scan")
    summary = "ADD CONSTRAINT ... CHECK ... NOT VALID, then VALIDATE CONSTRAINT"
    priority = 40

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.AddConstraint):
            return isinstance(op.constraint, CheckConstraint) and ctx.existing(op.model_name)
        if isinstance(op, migrations.AddField):
            return new_field_strategy(ctx) == ID
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        conn = ctx.plan.connection
        return (
            db_kwargs_differ(old, new) <= {"__class__"}
            and old.db_type(conn) == new.db_type(conn)
            and not old.db_check(conn)
            and bool(new.db_check(conn))
        )

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        if isinstance(op, migrations.AddField):
            facts = field_facts(ctx, op.model_name, op.name, op.field)
            return add_field_chain(
                ctx,
                ID,
                facts,
                column_ops=plain_column_ops(
                    ctx, facts, comment="The column without its CHECK: no scan."
                ),
                state_field=op.field,
                slug=f"add_{facts.model_name}_{facts.name}",
                title=f"Add {facts.label}, its CHECK NOT VALID",
                why=text(
                    ID,
                    "not_valid",
                    field=True,
                    table=facts.table,
                    column=facts.column,
                    check=facts.check_sql,
                ),
            )
        if isinstance(op, migrations.AddConstraint):
            model = ctx.model_after(op.model_name)
            table = model._meta.db_table
            name = op.constraint.name
            sql = str(op.constraint.constraint_sql(model, plan.editor()))
            key = f"{ctx.app_label}.{model._meta.model_name}"
            first = Step(
                strategy=ID,
                slug=f"add_{name}_not_valid"[:60],
                phase="expand",
                title=f"Add the CHECK constraint {name} on {table} NOT VALID",
                why=text(ID, "not_valid", field=False, table=table, name=name),
                operations=[
                    SeparateSpec(
                        state=(ctx.spec(),),
                        database=(
                            plan.sql(
                                f"ALTER TABLE {plan.quote(table)} ADD {sql.strip()} NOT VALID",
                                f"ALTER TABLE {plan.quote(table)} "
                                f"DROP CONSTRAINT {plan.quote(name)}",
                                locks=(table,),
                            ),
                        ),
                    )
                ],
                locks=frozenset({table}),
                models=frozenset({key}),
            )
            second = validate_step(
                plan, table=table, name=name, key=key, slug=f"validate_{name}"[:60]
            )
            return Chain(strategy=ID, steps=[first, second], index=ctx.index)
        # AlterField that only adds the type's CHECK
        _old, new = altered_field(ctx)  # type: ignore[misc]
        model = ctx.model_after(op.model_name)
        table = model._meta.db_table
        check = new.db_check(plan.connection)
        name = plan.identifier(table, new.column, suffix="check")
        key = f"{ctx.app_label}.{model._meta.model_name}.{op.name.lower()}"
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=op.field)
        first = Step(
            strategy=ID,
            slug=f"{model._meta.model_name}_{op.name}_check_not_valid",
            phase="expand",
            title=f"Add CHECK ({check}) on {table} NOT VALID",
            why=text(ID, "not_valid", field=True, table=table, column=new.column, check=check),
            operations=[
                SeparateSpec(
                    state=(DjangoOp(state),), database=(not_valid_ops(plan, table, name, check),)
                )
            ],
            locks=frozenset({table}),
            models=frozenset({key}),
        )
        second = validate_step(
            plan,
            table=table,
            name=name,
            key=key,
            slug=f"validate_{model._meta.model_name}_{op.name}_check",
        )
        return Chain(strategy=ID, steps=[first, second], index=ctx.index)

    def field_followups(self, ctx: OpContext, facts: FieldFacts) -> FieldPart | None:
        if not facts.check_sql:
            return None
        plan = ctx.plan
        name = plan.identifier(facts.table, facts.column, suffix="check")
        inline: list[OpSpec] = [
            not_valid_ops(
                plan,
                facts.table,
                name,
                facts.check_sql,
                comment="The type's CHECK, for new and updated rows; existing rows later.",
            )
        ]
        steps = [
            validate_step(
                plan,
                table=facts.table,
                name=name,
                key=facts.key,
                slug=f"validate_{facts.model_name}_{facts.name}_check",
            )
        ]
        return FieldPart(inline=inline, steps=steps, locks=frozenset({facts.table}))
