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
from ..steps import backfill_step, not_null_steps
from ..writer import text
from .base import Strategy, field_facts

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
        fill = self._fill(op)
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
            "fill": fill,
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
    def _fill(op: Any) -> dict[str, Any] | None:
        if not op.field.has_default():
            return None
        default = op.field.default
        source, imports = MigrationWriter.serialize(default)
        mode = "value"
        if callable(default):
            source = f"{source}()"
            mode = "python"
        return {"mode": mode, "value_source": source, "imports": sorted(imports)}

    def _fill_step(
        self, plan: PlanContext, facts: Any, fill: Mapping[str, Any], *, catch_up: bool
    ) -> Step:
        source = fill["value_source"]
        return backfill_step(
            plan,
            strategy=ID,
            app_label=facts.app_label,
            model_class=facts.model_class,
            model_key=facts.key,
            table=facts.table,
            column=facts.column,
            field_name=facts.name,
            mode=fill["mode"],
            value_source=source,
            value_imports=frozenset(fill["imports"]),
            why=text(
                ID,
                "fill_nulls",
                table=facts.table,
                column=facts.column,
                value_text=f"the default ({source})",
                batch_size=plan.batch_size,
                catch_up=catch_up,
            ),
            title=f"Fill NULL {facts.label} with {source}" + (" (catch-up)" if catch_up else ""),
            slug=f"fill_{facts.model_name}_{facts.name}",
            function=f"fill_{facts.model_name}_{facts.name}",
        )

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        if data.get("kind") != "enforce":
            raise ValueError(f"unknown {ID} step {data.get('kind')!r}")
        facts = _Resumed(data)
        steps: list[Step] = []
        if data.get("fill"):
            steps.append(self._fill_step(plan, facts, data["fill"], catch_up=True))
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
