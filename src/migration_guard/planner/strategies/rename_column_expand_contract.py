"""A column renamed for real (db_column changed, or --full-rename): expand/contract.

Answers ``alter-db-column`` (and ``rename-field`` with ``--full-rename``).
``RENAME COLUMN`` is instant but breaks the previous release, whose queries name
the old column. Instead, in release 1:

1. *expand* (atomic): the new column, nullable, and a trigger that copies
   between the two columns both ways (the previous release writes the old one,
   the new release the new one); ``CHECK NOT VALID`` on the new one when NOT NULL;
2. *backfill* (non-atomic): existing rows, in primary key batches;
3. *enforce* (atomic): ``VALIDATE CONSTRAINT``;
4. *switch* (atomic): ``SET NOT NULL`` (no scan), Django's state gets the new
   column (the AlterField or RenameField).

Release 2 (*contract*): the trigger and the old column go.

Columns with indexes, constraints or foreign keys are left as they are, with a
note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations

from ..context import DjangoField, OpContext, PlanContext
from ..model import Chain, Step
from ..steps import ColumnCopy, CopyTexts, column_copy_steps, contract_steps
from ..writer import text
from ._refuse import copy_obstacles
from .base import Strategy, field_facts
from .set_not_null import altered_field, db_kwargs_differ

ID = "rename-column-expand-contract"


class RenameColumnExpandContract(Strategy):
    """Column renamed: new column kept in step both ways by a trigger; old one dropped later."""

    id = ID
    rules = ("alter-db-column", "rename-field")
    summary = "expand/contract: new column + two-way trigger, backfill, switch; next release: drop"
    priority = 57

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.RenameField):
            if not ctx.plan.full_rename or not ctx.existing(op.model_name):
                return False
            old = ctx.model_before(op.model_name)._meta.get_field(op.old_name)
            new = ctx.model_after(op.model_name)._meta.get_field(op.new_name)
            return old.column != new.column and not old.many_to_many
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        return db_kwargs_differ(old, new) == {"db_column"} and not old.many_to_many

    def _fields(self, ctx: OpContext) -> tuple[DjangoField, DjangoField, str]:
        op = ctx.operation
        if isinstance(op, migrations.RenameField):
            return (
                ctx.model_before(op.model_name)._meta.get_field(op.old_name),
                ctx.model_after(op.model_name)._meta.get_field(op.new_name),
                op.new_name,
            )
        old, new = altered_field(ctx)  # type: ignore[misc]
        return old, new, op.name

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        old, new, name = self._fields(ctx)
        model = ctx.model_before(op.model_name)
        table = model._meta.db_table
        obstacles = copy_obstacles(model, old)
        if obstacles:
            return Chain.left_alone(
                ID,
                ctx.index,
                f"{table}.{old.column} is renamed {new.column}, which breaks the previous "
                "release, and is left as it is: "
                + "; ".join(obstacles)
                + ". Keep the old name (db_column) or rebuild those by hand.",
            )
        facts = field_facts(ctx, op.model_name, name, new)
        db_type = old.db_type(plan.connection)
        copy = ColumnCopy(
            strategy=ID,
            mode="rename",
            app_label=ctx.app_label,
            model_name=facts.model_name,
            model_class=facts.model_class,
            field_name=name,
            table=table,
            pk_columns=facts.pk_columns,
            old_column=old.column,
            new_column=new.column,
            old_type=db_type,
            new_type=db_type,
            not_null=not new.null,
            default_sql=facts.db_default_sql,
        )
        context = dict(
            table=table,
            column=old.column,
            new_column=new.column,
            not_null=copy.not_null,
        )
        texts = CopyTexts(
            expand_why=text(ID, "expand", **context),
            expand_title=f"Add {table}.{new.column}, kept in step with {old.column} by a trigger",
            expand_slug=f"expand_{copy.model_name}_{new.column}",
            backfill_why=text(ID, "backfill", **context),
            switch_why=text(ID, "switch", **context),
            switch_title=f"Switch Django to {table}.{new.column}",
            switch_slug=f"switch_{copy.model_name}_{new.column}",
            contract_title=f"Drop the old column {table}.{old.column} and its trigger",
            contract_slug=f"drop_{copy.model_name}_{old.column}",
        )
        steps = column_copy_steps(plan, copy, state_ops=(op,), texts=texts)
        return Chain(strategy=ID, steps=steps, index=ctx.index)

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        copy = ColumnCopy.from_json(data["copy"])
        return contract_steps(
            plan, data, why=text(ID, "contract", table=copy.table, column=copy.old_column)
        )
