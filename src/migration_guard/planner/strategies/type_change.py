"""Column type changes that rewrite the table: expand/contract instead.

Answers ``alter-column-type-rewrite``. ``ALTER COLUMN ... TYPE`` rewrites the
table and rebuilds its indexes under ACCESS EXCLUSIVE (int -> bigint, varchar
shrink, text -> integer...). Instead, in release 1:

1. *expand* (atomic): ``<col>__new`` with the new type, nullable, kept in step by
   a trigger (``NEW.<col>__new := NEW.<col>::<type>``) for the previous
   release's writes; ``CHECK (<col>__new IS NOT NULL) NOT VALID`` for a NOT NULL
   field;
2. *backfill* (non-atomic): existing rows in primary key batches;
3. *enforce* (atomic): ``VALIDATE CONSTRAINT`` (NOT NULL fields);
4. *switch* (atomic): ``SET NOT NULL`` (no scan: the validated CHECK), the trigger
   dropped, the old column made nullable and renamed ``<col>__old``, the new one
   renamed ``<col>``; Django's state gets the AlterField. The previous release
   keeps working: it names ``<col>``, which now has the new type.

Release 2 (*contract*): ``DROP COLUMN <col>__old``.

Changes PostgreSQL makes without a rewrite (varchar widened, varchar -> text,
numeric precision raised) are left as they are. Columns with indexes,
constraints or foreign keys on them are left as they are too, with a note: their
indexes would have to be rebuilt on the new column first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.db import migrations

from ..context import OpContext, PlanContext
from ..model import Chain, Step
from ..steps import ColumnCopy, CopyTexts, column_copy_steps, contract_steps
from ..writer import text
from ._refuse import copy_obstacles
from .base import Strategy, field_facts
from .set_not_null import altered_field, db_kwargs_differ

ID = "type-change-expand-contract"
#: What may differ between the two fields for this strategy to apply.
TYPE_ARGUMENTS = {"__class__", "max_length", "max_digits", "decimal_places"}

_VARCHAR = re.compile(r"^(?:varchar|character varying)(?:\((\d+)\))?$")
_NUMERIC = re.compile(r"^numeric(?:\((\d+),\s*(\d+)\))?$")


def binary_coercible(old: str, new: str) -> bool:
    """PostgreSQL changes the column without rewriting the table (catalog only)."""
    old, new = old.strip().lower(), new.strip().lower()
    if old == new:
        return True
    old_varchar, new_varchar = _VARCHAR.match(old), _VARCHAR.match(new)
    if old_varchar and new == "text":
        return True
    if old == "text" and new_varchar and new_varchar.group(1) is None:
        return True
    if old_varchar and new_varchar:
        if new_varchar.group(1) is None:
            return True
        return old_varchar.group(1) is not None and int(new_varchar.group(1)) >= int(
            old_varchar.group(1)
        )
    old_numeric, new_numeric = _NUMERIC.match(old), _NUMERIC.match(new)
    if old_numeric and new_numeric:
        if new_numeric.group(1) is None:
            return True
        if old_numeric.group(1) is None:
            return False
        return int(new_numeric.group(1)) >= int(old_numeric.group(1)) and new_numeric.group(
            2
        ) == old_numeric.group(2)
    return False


class TypeChangeExpandContract(Strategy):
    """Column type change that rewrites: new column, trigger, backfill, switch; drop later."""

    id = ID
    rules = ("alter-column-type-rewrite",)
    summary = "expand/contract: new column + trigger, backfill, switch names; next release: drop"
    priority = 35

    def matches(self, ctx: OpContext) -> bool:
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        if old.many_to_many or new.many_to_many:
            return False
        conn = ctx.plan.connection
        old_type, new_type = old.db_type(conn), new.db_type(conn)
        if not old_type or not new_type or binary_coercible(old_type, new_type):
            return False
        return db_kwargs_differ(old, new) <= TYPE_ARGUMENTS

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        old, new = altered_field(ctx)  # type: ignore[misc]
        model = ctx.model_before(op.model_name)
        obstacles = copy_obstacles(model, old)
        conn = plan.connection
        old_type, new_type = old.db_type(conn), new.db_type(conn)
        if obstacles:
            return Chain(
                strategy=ID,
                steps=[],
                index=ctx.index,
                planned=False,
                notes=[
                    f"{model._meta.db_table}.{old.column} changes type {old_type} -> {new_type}, "
                    "which rewrites the table, and is left as it is: "
                    + "; ".join(obstacles)
                    + ". Rebuild those on a new column by hand (expand/contract)."
                ],
            )
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        copy = ColumnCopy(
            strategy=ID,
            mode="type",
            app_label=ctx.app_label,
            model_name=facts.model_name,
            model_class=facts.model_class,
            field_name=facts.name,
            table=facts.table,
            pk_column=facts.pk_column,
            old_column=old.column,
            new_column=plan.identifier(old.column, suffix="_new"),
            old_type=old_type,
            new_type=new_type,
            not_null=not new.null,
            default_sql=facts.db_default_sql,
        )
        context = dict(
            table=copy.table,
            column=copy.old_column,
            new_column=copy.new_column,
            old_type=old_type,
            new_type=new_type,
            not_null=copy.not_null,
            batch_size=plan.batch_size,
        )
        texts = CopyTexts(
            expand_why=text(ID, "expand", **context),
            expand_title=f"Add {copy.table}.{copy.new_column} {new_type}, kept in step by a "
            "trigger",
            expand_slug=f"expand_{copy.model_name}_{copy.field_name}",
            backfill_why=text(ID, "backfill", **context),
            switch_why=text(ID, "switch", **context),
            switch_title=f"Switch {copy.table}.{copy.old_column} to {new_type} "
            "(the columns swap names)",
            switch_slug=f"switch_{copy.model_name}_{copy.field_name}",
            contract_title=f"Drop the old column of {copy.table}.{copy.old_column} ({old_type})",
            contract_slug=f"drop_{copy.model_name}_{copy.field_name}_old",
        )
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=op.field)
        steps: list[Step] = column_copy_steps(plan, copy, state_ops=(state,), texts=texts)
        chain = Chain(strategy=ID, steps=steps, index=ctx.index)
        chain.notes.append(
            f"Deploy: ship release 1 (expand, backfill, switch of {copy.table}.{copy.old_column}); "
            "once it runs everywhere and is not going to be rolled back, run "
            f"`{plan.manage} plan_zero_downtime {ctx.app_label}` for release 2, which drops the "
            "old column."
        )
        return chain

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        copy = ColumnCopy.from_json(data["copy"])
        return contract_steps(
            plan,
            data,
            why=text(
                ID, "contract", table=copy.table, column=copy.old_column, old_type=copy.old_type
            ),
        )
