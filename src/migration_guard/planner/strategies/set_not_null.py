"""Existing field made NOT NULL: CHECK NOT VALID, then VALIDATE, SET NOT NULL, drop the CHECK.

Answers ``set-not-null``. ``ALTER COLUMN ... SET NOT NULL`` alone scans the
whole table under ACCESS EXCLUSIVE. Instead:

1. (atomic) ``ADD CONSTRAINT <t>_<c>_not_null CHECK (c IS NOT NULL) NOT VALID``:
   milliseconds of ACCESS EXCLUSIVE, no scan; new rows are checked from now on.
2. (atomic, its own transaction) ``VALIDATE CONSTRAINT`` scans under SHARE UPDATE
   EXCLUSIVE (reads and writes go on), then ``SET NOT NULL`` skips its scan
   because a validated CHECK proves it (PostgreSQL 12+), then the CHECK goes.

On PostgreSQL 18+ the constraint is the NOT NULL itself:
``ADD CONSTRAINT <name> NOT NULL c NOT VALID`` then ``VALIDATE CONSTRAINT``.

The field was nullable in the previous release, whose code writes NULL there
(Django inserts every field, None included): enforcing NOT NULL while it runs
breaks its INSERTs. So this release only changes Django's state (a
SeparateDatabaseAndState without SQL) and, when the field has a default, fills
the existing NULLs in batches; the two steps above belong to the next release,
after a catch-up fill. ``not_null_steps`` is shared with the strategies that add
a NOT NULL column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations
from django.db.migrations.writer import MigrationWriter

from ..context import DjangoField, OpContext, PlanContext
from ..model import Chain, DjangoOp, SeparateSpec, Step
from ..steps import Fill, backfill_step, not_null_steps, sql_fill_expression
from ..writer import text
from .base import FieldFacts, Strategy, field_facts

ID = "set-not-null"


def db_kwargs_differ(old: DjangoField, new: DjangoField) -> set[str]:
    """Constructor arguments that differ between two fields, schema-relevant ones only."""
    _, old_path, old_args, old_kwargs = old.deconstruct()
    _, new_path, new_args, new_kwargs = new.deconstruct()
    out = set()
    if old_path != new_path or old_args != new_args:
        out.add("__class__")
    for attr in set(old_kwargs) | set(new_kwargs):
        if attr in old.non_db_attrs or attr in new.non_db_attrs:
            continue
        if old_kwargs.get(attr, _MISSING) != new_kwargs.get(attr, _MISSING):
            out.add(attr)
    if old.column != new.column:
        out.add("db_column")
    return out


_MISSING = object()


def altered_field(ctx: OpContext) -> tuple[DjangoField, DjangoField] | None:
    """(old, new) rendered fields of an AlterField on an existing table, else None."""
    op = ctx.operation
    if not isinstance(op, migrations.AlterField) or not ctx.existing(op.model_name):
        return None
    try:
        old = ctx.model_before(op.model_name)._meta.get_field(op.name)
        new = ctx.model_after(op.model_name)._meta.get_field(op.name)
    except LookupError:
        return None
    return old, new


class SetNotNull(Strategy):
    """Existing nullable field made NOT NULL: CHECK NOT VALID, VALIDATE, SET NOT NULL."""

    id = ID
    rules = ("set-not-null",)
    summary = "state now; next release: CHECK NOT VALID, then VALIDATE + SET NOT NULL + DROP CHECK"
    priority = 30

    def matches(self, ctx: OpContext) -> bool:
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        if not (old.null and not new.null) or new.many_to_many:
            return False
        return db_kwargs_differ(old, new) <= {"null", "default"}

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        state_op = migrations.AlterField(
            model_name=op.model_name,
            name=op.name,
            field=op.field,
            preserve_default=op.preserve_default,
        )
        fill = self._fill(ctx, facts)
        steps: list[Step] = [
            Step(
                strategy=ID,
                slug=f"{facts.model_name}_{facts.name}_not_null_state",
                phase="change",
                title=f"Django's state: {facts.model_class}.{facts.name} NOT NULL "
                "(the database follows in the next release)",
                why=text(ID, "state", table=facts.table, column=facts.column),
                operations=[
                    SeparateSpec(state=(DjangoOp(state_op),), database=(), comment="No SQL.")
                ],
                models=frozenset({facts.key}),
            )
        ]
        if fill is not None:
            steps.append(self._fill_step(ctx.plan, facts, fill, catch_up=False))
        resume = {
            "kind": "enforce",
            "app_label": facts.app_label,
            "model": facts.model_class,
            "model_name": facts.model_name,
            "field": facts.name,
            "table": facts.table,
            "column": facts.column,
            "fill": fill.as_json() if fill is not None else None,
        }
        steps.append(
            Step(
                strategy=ID,
                slug=f"{facts.model_name}_{facts.name}_not_null",
                phase="enforce",
                title=f"Enforce NOT NULL on {facts.label}"
                + (" (after filling NULLs again)" if fill else ""),
                why="",
                operations=[],
                release=2,
                resume=resume,
                models=frozenset({facts.key}),
            )
        )
        notes = []
        if fill is None:
            notes.append(
                f"{facts.label} has no default to fill existing NULLs with: VALIDATE in the "
                "next release fails while NULLs remain. Fill them in this release (a RunPython "
                "backfill) or give the field a default and plan again."
            )
        return Chain(strategy=ID, steps=steps, index=ctx.index, notes=notes)

    @staticmethod
    def _fill(ctx: OpContext, facts: FieldFacts) -> Fill | None:
        """The field's default for the existing NULLs: a constant (one parameter of a
        set-based UPDATE), a callable PostgreSQL can compute, or one called in Python."""
        op = ctx.operation
        if not op.field.has_default():
            return None
        default = op.field.default
        source, imports = MigrationWriter.serialize(default)
        expression: str | None = "%s"
        if callable(default):
            expression = sql_fill_expression(ctx.plan, default, facts.db_type)
        return Fill.null_rows_of(
            ctx.plan,
            facts,
            expression,
            value_source=None if expression not in (None, "%s") else source,
            value_imports=tuple(sorted(imports)),
        )

    def _fill_step(
        self, plan: PlanContext, facts: FieldFacts | _Resumed, fill: Fill, *, catch_up: bool
    ) -> Step:
        what = fill.value_source if fill.value_source is not None else fill.expression
        if fill.value_source is not None and fill.expression is None:
            what = f"{fill.value_source}()"
        return backfill_step(
            plan,
            fill,
            strategy=ID,
            model_key=facts.key,
            why=text(
                ID,
                "fill_nulls",
                table=facts.table,
                column=facts.column,
                value_text=f"the default ({what})",
                set_based=fill.set_based,
                catch_up=catch_up,
            ),
            title=f"Fill NULL {facts.label} with {what}" + (" (catch-up)" if catch_up else ""),
            slug=f"fill_{facts.model_name}_{facts.name}",
            function=f"fill_{facts.model_name}_{facts.name}",
        )

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        if data.get("kind") != "enforce":
            raise ValueError(f"unknown {ID} step {data.get('kind')!r}")
        facts = _Resumed(data)
        steps: list[Step] = []
        if data.get("fill"):
            fill = _recorded_fill(data, plan)
            steps.append(self._fill_step(plan, facts, fill, catch_up=True))
        steps += not_null_steps(
            plan,
            strategy=ID,
            table=data["table"],
            column=data["column"],
            key=facts.key,
            slug=f"{data['model_name']}_{data['field']}",
        )
        return steps


class _Resumed:
    """The few field facts a resumed step needs, from the plan record."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.app_label = data["app_label"]
        self.model_class = data["model"]
        self.model_name = data["model_name"]
        self.name = data["field"]
        self.table = data["table"]
        self.column = data["column"]
        self.key = f"{self.app_label}.{self.model_name}.{str(self.name).lower()}"
        self.label = f"{self.table}.{self.column}"


def _recorded_fill(data: Mapping[str, Any], plan: PlanContext) -> Fill:
    """The fill of a plan record entry (older records: ``mode`` and ``value_source``)."""
    recorded = data["fill"]
    if "expression" in recorded:
        return Fill.from_json(recorded)
    source = str(recorded["value_source"])
    python = recorded.get("mode") == "python"
    return Fill(
        app_label=data["app_label"],
        model_class=data["model"],
        field_name=data["field"],
        table=data["table"],
        column=data["column"],
        key=("id",),
        expression=None if python else "%s",
        todo=f"{plan.quote(data['column'])} IS NULL",
        value_source=source.removesuffix("()") if python else source,
        value_imports=tuple(recorded.get("imports", ())),
    )
