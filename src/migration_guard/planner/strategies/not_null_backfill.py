"""New NOT NULL field whose value is computed per row: add nullable, backfill, enforce.

Answers ``not-null-without-db-default`` when the default is a callable
(``uuid.uuid4``, ``timezone.now``...) and ``add-column-volatile-default`` (a
``db_default`` such as ``RandomUUID()`` would rewrite the table).

1. *expand* (atomic): the column, nullable, no default (a volatile database
   default is set afterwards with ``SET DEFAULT``, which only affects new rows).
   Django's state gets the final field at once through SeparateDatabaseAndState,
   so state and models stay equal.
2. *backfill* (non-atomic): a reversible RunPython filling existing rows in
   batches keyed on the primary key, one short transaction per batch.
3. *enforce*: NOT NULL without a long ACCESS EXCLUSIVE (see ``set_not_null``).

When the database has no default for the column, the previous release's
INSERTs (which do not know it) write NULL until that release is gone, so step 3
is a step of the *next* release, preceded by a catch-up backfill. With a
database default, all three steps ship now.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations
from django.db.migrations.writer import MigrationWriter

from ..context import OpContext, PlanContext
from ..model import Chain, DjangoOp, OpSpec, Step
from ..steps import Fill, backfill_step, not_null_steps, sql_fill_expression
from ..writer import text
from .base import (
    NOT_PROVIDED,
    FieldFacts,
    Strategy,
    add_field_chain,
    auto_now_default,
    bare_field,
    column_definition,
    field_facts,
    new_field_strategy,
)

ID = "not-null-backfill"


def _computed_by(facts: FieldFacts) -> str:
    if facts.db_default_sql is not None:
        return f"db_default {facts.db_default_sql}"
    auto = auto_now_default(facts.field)
    if auto is not None and not facts.has_default:
        kind = "auto_now" if getattr(facts.field, "auto_now", False) else "auto_now_add"
        return f"{kind}: the time of the migration for existing rows"
    default = facts.default
    name = getattr(default, "__qualname__", None) or repr(default)
    module = getattr(default, "__module__", "")
    return f"default={module}.{name}" if module else f"default={name}"


class NotNullBackfill(Strategy):
    """New NOT NULL field with a computed value: add nullable, backfill in batches, enforce."""

    id = ID
    rules = ("not-null-without-db-default", "add-column-volatile-default")
    summary = "add nullable, backfill in batches, then NOT NULL via CHECK NOT VALID + VALIDATE"
    priority = 20

    def matches(self, ctx: OpContext) -> bool:
        return new_field_strategy(ctx) == ID

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        q = plan.quote
        volatile_default = facts.db_default_sql if facts.db_default_volatile else None
        if facts.check_sql:
            column_ops: list[OpSpec] = [
                plan.sql(
                    f"ALTER TABLE {q(facts.table)} ADD COLUMN "
                    + column_definition(ctx, facts, default_sql=None, not_null=False),
                    f"ALTER TABLE {q(facts.table)} DROP COLUMN {q(facts.column)}",
                    locks=(facts.table,),
                )
            ]
        else:
            nullable = bare_field(facts, null=True, default=NOT_PROVIDED, db_default=NOT_PROVIDED)
            column_ops = [
                DjangoOp(
                    migrations.AddField(
                        model_name=facts.model_name, name=facts.name, field=nullable
                    ),
                    comment="The column alone, nullable: no rewrite, no scan.",
                )
            ]
        if volatile_default:
            column_ops.append(
                plan.sql(
                    f"ALTER TABLE {q(facts.table)} ALTER COLUMN {q(facts.column)} "
                    f"SET DEFAULT {volatile_default}",
                    f"ALTER TABLE {q(facts.table)} ALTER COLUMN {q(facts.column)} DROP DEFAULT",
                    comment="For new rows only: existing rows are filled by the backfill.",
                    locks=(facts.table,),
                )
            )
        context = dict(
            table=facts.table,
            column=facts.column,
            computed_by=_computed_by(facts),
            db_default_sql=volatile_default,
            catch_up=False,
            release=1,
            enforce_later=not facts.null and not volatile_default,
        )
        fill = self._fill(ctx, facts)
        backfill = self._backfill(plan, fill, facts.key, release=1, catch_up=False)
        later: list[Step] = [backfill]
        notes: list[str] = []
        resume: dict[str, Any] | None = None
        if not facts.null:
            if volatile_default:
                later += not_null_steps(
                    plan,
                    strategy=ID,
                    table=facts.table,
                    column=facts.column,
                    key=facts.key,
                    slug=f"{facts.model_name}_{facts.name}",
                )
            else:
                resume = self._resume_data(facts, fill)
                later += [
                    Step(
                        strategy=ID,
                        slug=f"{facts.model_name}_{facts.name}_not_null",
                        phase="enforce",
                        title=f"Enforce NOT NULL on {facts.label} (after a catch-up backfill)",
                        why="",
                        operations=[],
                        release=2,
                        resume=resume,
                        models=frozenset({facts.key}),
                    )
                ]
        chain = add_field_chain(
            ctx,
            ID,
            facts,
            column_ops=column_ops,
            state_field=op.field,
            preserve_default=op.preserve_default,
            slug=f"add_{facts.model_name}_{facts.name}",
            title=f"Add {facts.label} nullable (state: the final NOT NULL field)"
            if not facts.null
            else f"Add {facts.label} without a volatile DEFAULT",
            why=text(ID, "expand", **context),
            later=later,
        )
        chain.notes.extend(notes)
        return chain

    def _resume_data(self, facts: FieldFacts, fill: Fill) -> dict[str, Any]:
        return {
            "kind": "enforce",
            "app_label": facts.app_label,
            "model": facts.model_class,
            "model_name": facts.model_name,
            "field": facts.name,
            "table": facts.table,
            "column": facts.column,
            "fill": fill.as_json(),
        }

    @staticmethod
    def _fill(ctx: OpContext, facts: FieldFacts) -> Fill:
        """Set-based where PostgreSQL computes the value (a volatile database default,
        ``uuid.uuid4``...), else in Python per row with the field's callable."""
        op = ctx.operation
        expression = None
        value_source = None
        imports: tuple[str, ...] = ()
        if facts.db_default_volatile:
            expression = "DEFAULT"
        elif op.field.has_default() and callable(op.field.default):
            expression = sql_fill_expression(ctx.plan, op.field.default, facts.db_type)
            if expression is None and not op.preserve_default:
                # A one-off default: the state's field has none, the migration keeps it.
                source, found = MigrationWriter.serialize(op.field.default)
                value_source, imports = source, tuple(sorted(found))
        elif (auto := auto_now_default(op.field)) is not None:
            # auto_now/auto_now_add: what Django gives existing rows, now, in the backfill.
            expression = sql_fill_expression(ctx.plan, auto, facts.db_type)
            if expression is None:
                source, found = MigrationWriter.serialize(auto)
                value_source, imports = source, tuple(sorted(found))
        return Fill.null_rows_of(
            ctx.plan, facts, expression, value_source=value_source, value_imports=imports
        )

    def _backfill(
        self, plan: PlanContext, fill: Fill, key: str, *, release: int, catch_up: bool
    ) -> Step:
        why = text(
            ID,
            "backfill",
            table=fill.table,
            column=fill.column,
            set_based=fill.set_based,
            catch_up=catch_up,
            release=release,
        )
        return backfill_step(
            plan,
            fill,
            strategy=ID,
            model_key=key,
            why=why,
            title=f"Backfill {fill.table}.{fill.column} in batches"
            + (" (catch-up)" if catch_up else ""),
            slug=f"backfill_{fill.model_class.lower()}_{fill.field_name}",
            function=f"backfill_{fill.model_class.lower()}_{fill.field_name}",
            release=release,
        )

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        key = f"{data['app_label']}.{data['model_name']}.{str(data['field']).lower()}"
        if "fill" in data:
            fill = Fill.from_json(data["fill"])
        else:  # a record written before fills were recorded: the field's default, in Python
            fill = Fill(
                app_label=data["app_label"],
                model_class=data["model"],
                field_name=data["field"],
                table=data["table"],
                column=data["column"],
                key=("id",),
                expression=None,
                todo=f"{plan.quote(data['column'])} IS NULL",
            )
        backfill = self._backfill(plan, fill, key, release=2, catch_up=True)
        backfill.release = 1
        steps = [backfill]
        steps += not_null_steps(
            plan,
            strategy=ID,
            table=data["table"],
            column=data["column"],
            key=key,
            slug=f"{data['model_name']}_{data['field']}",
        )
        return steps
