"""Existing field made NOT NULL: CHECK NOT VALID, then VALIDATE, SET NOT NULL, drop the CHECK.

Answers ``set-not-null``. ``ALTER COLUMN ... SET NOT NULL`` alone scans the
whole table under ACCESS EXCLUSIVE. Instead:

1. (atomic) ``ADD CONSTRAINT <t>_<c>_not_null CHECK (c IS NOT NULL) NOT VALID``:
   milliseconds of ACCESS EXCLUSIVE, no scan; new rows are checked from now on.
2. (atomic, its own transaction) ``VALIDATE CONSTRAINT`` scans under SHARE UPDATE
   EXCLUSIVE (reads and writes go on), then ``SET NOT NULL`` skips its scan
   because a validated CHECK proves it (PostgreSQL 12+), then the CHECK goes.
   Django's state gets the NOT NULL field here, through SeparateDatabaseAndState.

On PostgreSQL 18+ the constraint is the NOT NULL itself:
``ADD CONSTRAINT <name> NOT NULL c NOT VALID`` then ``VALIDATE CONSTRAINT``.

When the AlterField has a default (kept or one-off), rows that are NULL are
filled with it first, in batches (non-atomic RunPython).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.db.migrations.writer import MigrationWriter

from ..model import Chain, DjangoOp, SeparateSpec, Step
from ..writer import text
from .base import FieldFacts, Strategy, field_facts

ID = "set-not-null"


def not_null_steps(
    plan: Any,
    *,
    strategy: str,
    table: str,
    column: str,
    key: str,
    slug: str,
    state_ops: tuple[Any, ...] = (),
    release: int = 1,
    note: str = "",
) -> list[Step]:
    """The two steps that make ``table.column`` NOT NULL without a long lock."""
    q = plan.quote
    pg18 = plan.pg.has_not_null_not_valid
    name = plan.identifier(table, column, suffix="not_null")
    t, c, n = q(table), q(column), q(name)
    context = dict(table=table, column=column, pg18=pg18, note=note)
    if pg18:
        first = plan.sql(
            f"ALTER TABLE {t} ADD CONSTRAINT {n} NOT NULL {c} NOT VALID",
            f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL",
            locks=(table,),
        )
        second = [plan.sql(f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}", None, scans=(table,))]
    else:
        first = plan.sql(
            f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID",
            f"ALTER TABLE {t} DROP CONSTRAINT {n}",
            locks=(table,),
        )
        second = [
            plan.sql(f"ALTER TABLE {t} VALIDATE CONSTRAINT {n}", None, scans=(table,)),
            plan.sql(
                f"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL",
                f"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL",
                comment="No scan: the validated CHECK proves there is no NULL (PostgreSQL 12+).",
                locks=(table,),
            ),
            plan.sql(
                f"ALTER TABLE {t} DROP CONSTRAINT {n}",
                f"ALTER TABLE {t} ADD CONSTRAINT {n} CHECK ({c} IS NOT NULL) NOT VALID",
                locks=(table,),
            ),
        ]
    ops: list[Any] = list(second)
    if state_ops:
        ops = [SeparateSpec(state=tuple(DjangoOp(o) for o in state_ops), database=tuple(second))]
    what = "NOT NULL" if pg18 else f"CHECK ({column} IS NOT NULL)"
    return [
        Step(
            strategy=strategy,
            slug=f"{slug}_not_null_not_valid",
            phase="enforce",
            title=f"Add {what} NOT VALID on {table}.{column}",
            why=text(ID, "not_valid", **context),
            operations=[first],
            release=release,
            locks=frozenset({table}),
            models=frozenset({key}),
            needs_major=18 if pg18 else 12,
        ),
        Step(
            strategy=strategy,
            slug=f"{slug}_validate_not_null",
            phase="enforce",
            title=f"Validate, then {table}.{column} SET NOT NULL"
            if not pg18
            else f"Validate NOT NULL on {table}.{column}",
            why=text(ID, "validate", state=bool(state_ops), **context),
            operations=ops,
            release=release,
            separate=True,
            locks=frozenset({table}),
            scans=frozenset({table}),
            models=frozenset({key}),
            needs_major=18 if pg18 else 12,
        ),
    ]


def db_kwargs_differ(old: Any, new: Any) -> set[str]:
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


def altered_field(ctx: Any) -> tuple[Any, Any] | None:
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
    summary = "CHECK (col IS NOT NULL) NOT VALID, then VALIDATE + SET NOT NULL + DROP CHECK"
    priority = 30

    def matches(self, ctx: Any) -> bool:
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        if not (old.null and not new.null) or new.many_to_many:
            return False
        return db_kwargs_differ(old, new) <= {"null", "default"}

    def plan(self, ctx: Any) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        facts = field_facts(ctx, op.model_name, op.name, op.field)
        steps: list[Step] = []
        fill = self._fill_nulls(ctx, facts)
        if fill is not None:
            steps.append(fill)
        note = ""
        if fill is None:
            note = (
                "The AlterField gives no default: rows that are NULL now make VALIDATE fail. "
                "Fill them first (a RunPython backfill before this migration)."
            )
        state_op = migrations.AlterField(
            model_name=op.model_name,
            name=op.name,
            field=op.field,
            preserve_default=op.preserve_default,
        )
        steps += not_null_steps(
            plan,
            strategy=ID,
            table=facts.table,
            column=facts.column,
            key=facts.key,
            slug=f"{facts.model_name}_{facts.name}",
            state_ops=(state_op,),
            note=note,
        )
        notes = [
            f"{facts.label} becomes NOT NULL in this release: make sure the previous release "
            "never writes NULL into it (it was nullable there)."
        ]
        return Chain(strategy=ID, steps=steps, index=ctx.index, notes=notes)

    def _fill_nulls(self, ctx: Any, facts: FieldFacts) -> Step | None:
        from .not_null_backfill import backfill_step

        op = ctx.operation
        if not op.field.has_default():
            return None
        default = op.field.default
        source, imports = MigrationWriter.serialize(default)
        mode = "value"
        if callable(default):
            source = f"{source}()"
            mode = "python"
        value_text = f"the default ({source})"
        return backfill_step(
            ctx.plan,
            strategy=ID,
            app_label=facts.app_label,
            model_class=facts.model_class,
            model_key=facts.key,
            table=facts.table,
            column=facts.column,
            field_name=facts.name,
            mode=mode,
            value_source=source,
            value_imports=frozenset(imports),
            why=text(
                ID,
                "fill_nulls",
                table=facts.table,
                column=facts.column,
                value_text=value_text,
                batch_size=ctx.plan.batch_size,
            ),
            title=f"Fill NULL {facts.label} with {source}",
            slug=f"fill_{facts.model_name}_{facts.name}",
            function=f"fill_{facts.model_name}_{facts.name}",
        )
