"""New NOT NULL field with a constant default: one step, the DEFAULT kept in the database.

Answers ``not-null-without-db-default``. Django's ``AddField(default=...)``
adds the column with a DEFAULT and drops the DEFAULT right after: the previous
release's INSERTs, which do not know the column, then fail. Keeping a real
database DEFAULT makes the step safe, and with a constant it is catalog-only on
PostgreSQL 11+ (no rewrite).

* Django 5.0+: the field gets ``db_default=<the same value>`` (models.py is
  edited to say so, keeping state and models equal) and a plain ``AddField``
  does the rest.
* Django 4.2 (or ``--no-db-default``): ``SeparateDatabaseAndState``, the state
  gets the field as written, the database ``RunSQL ADD COLUMN ... DEFAULT ...
  NOT NULL`` with its reverse. The DEFAULT stays in the database.
* A one-off default (``preserve_default=False``: the model has no default):
  the RunSQL form, and dropping the DEFAULT is a step of the next release, once
  no running code omits the column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations
from django.db.migrations.writer import MigrationWriter

from ..context import OpContext, PlanContext
from ..model import Chain, DjangoOp, ModelEdit, OpSpec, Step
from ..writer import text
from .base import (
    Strategy,
    add_field_chain,
    bare_field,
    clone_field,
    column_definition,
    constant_default_sql,
    field_facts,
    new_field_strategy,
)

ID = "not-null-default"


class NotNullDefault(Strategy):
    """New NOT NULL field with a constant default: ADD COLUMN ... DEFAULT ... NOT NULL, kept."""

    id = ID
    rules = ("not-null-without-db-default",)
    summary = "one step: the constant DEFAULT stays in the database (db_default or RunSQL)"
    priority = 10

    def matches(self, ctx: OpContext) -> bool:
        return new_field_strategy(ctx) == ID

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        one_off = not op.preserve_default
        value = op.field.default if op.field.has_default() else ""
        default_sql = constant_default_sql(ctx, facts, value)
        value_source = MigrationWriter.serialize(value)[0]
        q = plan.quote
        edits: list[ModelEdit] = []
        later: list[Step] = []
        # A later migration of the history redefines the field: its definition (without
        # db_default) wins there, so the database keeps the DEFAULT through RunSQL instead.
        redefined = plan.changed_later(
            facts.model_name, facts.name, kinds=("alter", "remove", "rename")
        )
        if plan.use_db_default and not one_off and not facts.check_sql and not redefined:
            state_field = clone_field(op.field, db_default=value)
            column_ops: list[OpSpec] = [
                DjangoOp(
                    migrations.AddField(
                        model_name=facts.model_name,
                        name=facts.name,
                        field=bare_field(facts, db_default=value),
                    )
                )
            ]
            edits.append(
                ModelEdit(
                    app_label=facts.app_label,
                    model=facts.model_class,
                    field=facts.name,
                    option="db_default",
                    source=value_source,
                    value=value,
                    reason="keep the DEFAULT in the database for the previous release's INSERTs",
                    copy_from="default",
                )
            )
            db_default = True
        else:
            state_field = op.field
            column_ops = [
                plan.sql(
                    f"ALTER TABLE {q(facts.table)} ADD COLUMN "
                    + column_definition(ctx, facts, default_sql=default_sql, not_null=True),
                    f"ALTER TABLE {q(facts.table)} DROP COLUMN {q(facts.column)}",
                    locks=(facts.table,),
                )
            ]
            db_default = False
            if one_off:
                later.append(
                    Step(
                        strategy=ID,
                        slug=f"drop_{facts.model_name}_{facts.name}_default",
                        phase="contract",
                        title=f"Drop the database DEFAULT of {facts.label}",
                        why="",
                        operations=[],
                        release=2,
                        resume={
                            "kind": "drop_default",
                            "app_label": facts.app_label,
                            "model_name": facts.model_name,
                            "field": facts.name,
                            "table": facts.table,
                            "column": facts.column,
                            "default_sql": default_sql,
                        },
                        models=frozenset({facts.key}),
                    )
                )
        why = text(
            ID,
            "expand",
            table=facts.table,
            column=facts.column,
            default_sql=default_sql,
            one_off=one_off,
            db_default=db_default,
            value_source=value_source,
        )
        chain = add_field_chain(
            ctx,
            ID,
            facts,
            column_ops=column_ops,
            state_field=state_field,
            preserve_default=op.preserve_default,
            slug=f"add_{facts.model_name}_{facts.name}",
            title=f"Add {facts.label} NOT NULL DEFAULT {default_sql} (the DEFAULT stays)",
            why=why,
            later=later,
            plain_when_possible=True,
        )
        chain.edits.extend(edits)
        return chain

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        if data.get("kind") != "drop_default":
            raise ValueError(f"unknown {ID} step {data.get('kind')!r}")
        q = plan.quote
        table, column = data["table"], data["column"]
        return [
            Step(
                strategy=ID,
                slug=f"drop_{data['model_name']}_{data['field']}_default",
                phase="contract",
                title=f"Drop the database DEFAULT of {table}.{column}",
                why=text(
                    ID,
                    "drop_default",
                    table=table,
                    column=column,
                    default_sql=data["default_sql"],
                    release=1,
                ),
                operations=[
                    plan.sql(
                        f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} DROP DEFAULT",
                        f"ALTER TABLE {q(table)} ALTER COLUMN {q(column)} "
                        f"SET DEFAULT {data['default_sql']}",
                        locks=(table,),
                    )
                ],
                locks=frozenset({table}),
                models=frozenset(
                    {f"{data['app_label']}.{data['model_name']}.{str(data['field']).lower()}"}
                ),
            )
        ]
