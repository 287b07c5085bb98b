"""Column type changes that rewrite the table: expand/contract instead.

Answers ``alter-column-type-rewrite``. ``ALTER COLUMN ... TYPE`` rewrites the
table and rebuilds its indexes under ACCESS EXCLUSIVE (int -> bigint, varchar
shrink, text -> integer...). Instead, in release 1:

1. *expand* (atomic): ``<col>__new`` with the new type, nullable, kept in step by
   a trigger (``NEW.<col>__new := NEW.<col>::<type>``) for the previous
   release's writes; ``CHECK (<col>__new IS NOT NULL) NOT VALID`` for a NOT NULL
   field. A change that can lose data (varchar shrunk, bigint -> integer, fewer
   decimal places, any type whose values might not survive the trip) first adds
   ``CHECK (<the value fits>) NOT VALID`` on ``<col>``: PostgreSQL's explicit
   casts truncate and round silently, this CHECK refuses instead;
2. *validate* (that CHECK, its own transaction): a value that does not fit stops
   the migration here, with PostgreSQL's error, before anything is copied (as
   Django's AlterField would fail);
3. *backfill* (non-atomic): existing rows in keyset batches;
4. *enforce* (atomic): ``VALIDATE CONSTRAINT`` (NOT NULL fields);
5. *switch* (atomic): ``SET NOT NULL`` (no scan: the validated CHECK), the trigger
   dropped, the old column made nullable and renamed ``<col>__old``, the new one
   renamed ``<col>``; Django's state gets the AlterField. The previous release
   keeps working: it names ``<col>``, which now has the new type. Its reverse
   copies back only rows written since the switch: no other value is touched.

Release 2 (*contract*): ``DROP COLUMN <col>__old``.

The swap changes the type of a column under running code, which breaks
server-side prepared statements (``cached plan must not change result type``).
``--no-column-swap`` plans the variant without it: the model moves to
``<col>__new`` through ``db_column`` (models.py is edited), the trigger keeps
both columns in step both ways, and release 2 drops the old column and the
trigger.

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
from ..model import Chain, ModelEdit, Step
from ..steps import ColumnCopy, CopyTexts, column_copy_steps, contract_steps
from ..writer import text
from ._refuse import copy_obstacles
from .base import Strategy, clone_field, field_facts
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


_TEXT = re.compile(r"^(?:text|varchar|character varying|char|character|bpchar)(?:\((\d+)\))?$")
_INTEGERS = {
    "smallint": (-32768, 32767),
    "integer": (-2147483648, 2147483647),
    "bigint": (-9223372036854775808, 9223372036854775807),
}
#: Decimal digits an integer type can have (for numeric(p, s) targets).
_INTEGER_DIGITS = {"smallint": 5, "integer": 10, "bigint": 19}


def _normal(db_type: str) -> str:
    return re.sub(r"\s+", " ", db_type.strip().lower())


def lossless(old_type: str, new_type: str) -> bool:
    """Every value of ``old_type`` converts to ``new_type`` and back unchanged."""
    old, new = _normal(old_type), _normal(new_type)
    if old == new or binary_coercible(old, new):
        return True
    if new in ("text", "varchar", "character varying"):
        return True  # text output of any value reads back as that value
    if old in _INTEGERS and new in _INTEGERS:
        return _INTEGERS[new][0] <= _INTEGERS[old][0] and _INTEGERS[old][1] <= _INTEGERS[new][1]
    old_numeric, new_numeric = _NUMERIC.match(old), _NUMERIC.match(new)
    if new_numeric and new_numeric.group(1) is None:
        return old in _INTEGERS or old_numeric is not None
    if new_numeric and old in _INTEGERS:
        digits = int(new_numeric.group(1)) - int(new_numeric.group(2))
        return digits >= _INTEGER_DIGITS[old]
    if new_numeric and old_numeric and old_numeric.group(1) is not None:
        old_p, old_s = int(old_numeric.group(1)), int(old_numeric.group(2))
        new_p, new_s = int(new_numeric.group(1)), int(new_numeric.group(2))
        return new_s >= old_s and new_p - new_s >= old_p - old_s
    if (old, new) in {("real", "double precision"), ("smallint", "real")}:
        return True
    if old in _INTEGERS and new == "double precision":
        return old != "bigint"
    return old == "date" and new in ("timestamp", "timestamp with time zone")


def fits_condition(old_type: str, new_type: str, column: str) -> str | None:
    """SQL that holds for a value of ``column`` (``old_type``) that ``new_type`` keeps exactly.

    None when every value fits. A length for text, the range for integers, digits and
    scale for numeric; otherwise the value must survive the round trip through the
    new type. PostgreSQL's explicit casts truncate strings and round numbers
    silently: this CHECK is what stops the copy before it loses anything.
    """
    old, new = _normal(old_type), _normal(new_type)
    if lossless(old, new):
        return None
    text_target = _TEXT.match(new)
    if text_target and text_target.group(1) and _TEXT.match(old):
        return f"char_length({column}) <= {text_target.group(1)}"
    if new in _INTEGERS and (old in _INTEGERS or _NUMERIC.match(old)):
        low, high = _INTEGERS[new]
        if old in _INTEGERS:
            return f"{column} BETWEEN {low} AND {high}"
        return f"{column} = trunc({column}) AND {column} BETWEEN {low} AND {high}"
    numeric = _NUMERIC.match(new)
    if numeric and numeric.group(1) is not None and (old in _INTEGERS or _NUMERIC.match(old)):
        precision, scale = int(numeric.group(1)), int(numeric.group(2))
        value = f"{column}::numeric"
        return f"{value} = round({value}, {scale}) AND abs({value}) < 1e{precision - scale}"
    return f"{column}::{new_type}::{old_type} = {column}"


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
            return Chain.left_alone(
                ID,
                ctx.index,
                f"{model._meta.db_table}.{old.column} changes type {old_type} -> {new_type}, "
                "which rewrites the table, and is left as it is: "
                + "; ".join(obstacles)
                + ". Rebuild those on a new column by hand (expand/contract).",
            )
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        swap = plan.column_swap
        new_column = plan.identifier(old.column, suffix="_new")
        copy = ColumnCopy(
            strategy=ID,
            mode="type",
            app_label=ctx.app_label,
            model_name=facts.model_name,
            model_class=facts.model_class,
            field_name=facts.name,
            table=facts.table,
            pk_columns=facts.pk_columns,
            old_column=old.column,
            new_column=new_column,
            old_type=old_type,
            new_type=new_type,
            not_null=not new.null,
            default_sql=facts.db_default_sql,
            fits=fits_condition(old_type, new_type, plan.quote(old.column)),
            swap=swap,
        )
        context = dict(
            table=copy.table,
            column=copy.old_column,
            new_column=copy.new_column,
            old_type=old_type,
            new_type=new_type,
            not_null=copy.not_null,
            fits=copy.fits,
            swap=swap,
        )
        texts = CopyTexts(
            expand_why=text(ID, "expand", **context),
            expand_title=f"Add {copy.table}.{copy.new_column} {new_type}, kept in step by a "
            "trigger",
            expand_slug=f"expand_{copy.model_name}_{copy.field_name}",
            fits_why=text(ID, "fits", **context),
            backfill_why=text(ID, "backfill", **context),
            switch_why=text(ID, "switch", **context),
            switch_title=f"Switch {copy.table}.{copy.old_column} to {new_type} "
            + ("(the columns swap names)" if swap else f"(the model moves to {new_column})"),
            switch_slug=f"switch_{copy.model_name}_{copy.field_name}",
            contract_title=f"Drop the old column of {copy.table}.{copy.old_column} ({old_type})"
            if swap
            else f"Drop the old column {copy.table}.{copy.old_column} and its trigger",
            contract_slug=f"drop_{copy.model_name}_{copy.field_name}_old",
        )
        chain = Chain(strategy=ID, steps=[], index=ctx.index)
        field = op.field
        if not swap:
            # The model keeps the new column's name: no column of a running release ever
            # changes type under it (server-side prepared statements keep working).
            field = clone_field(op.field, db_column=new_column)
            chain.edits.append(
                ModelEdit(
                    app_label=ctx.app_label,
                    model=facts.model_class,
                    field=facts.name,
                    option="db_column",
                    source=repr(new_column),
                    value=new_column,
                    reason=f"the {new_type} column is {new_column} (no column swap)",
                )
            )
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=field)
        chain.steps = column_copy_steps(plan, copy, state_ops=(state,), texts=texts)
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
                ID,
                "contract",
                table=copy.table,
                column=copy.old_column,
                old_type=copy.old_type,
                swap=copy.swap,
            ),
        )
