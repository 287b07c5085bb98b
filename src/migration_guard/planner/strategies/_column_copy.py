"""Expand/contract of one column: a second column kept in step by a trigger, then a switch.

Shared by ``type_change`` (the new column has the new type, the switch swaps the
names) and ``rename_column_expand_contract`` (the new column has the new name, the
trigger copies both ways, the switch is Django's state only).

Release 1:

1. *expand* (atomic): ``ADD COLUMN`` (nullable), a ``BEFORE INSERT OR UPDATE``
   trigger that fills it from the column the previous release writes, and for a
   NOT NULL field ``CHECK (new IS NOT NULL) NOT VALID``;
2. *backfill* (non-atomic): existing rows, in primary key batches;
3. *enforce* (atomic): ``VALIDATE CONSTRAINT`` (NOT NULL fields only);
4. *switch* (atomic): Django's state gets the final field; for a type change the
   columns swap names, so the new code reads and writes the new one.

Release 2 (*contract*): the old column (and the trigger) go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from ..model import DjangoOp, SeparateSpec, Step
from ..writer import text
from .not_null_backfill import backfill_step


@dataclasses.dataclass(frozen=True)
class ColumnCopy:
    strategy: str
    mode: str  # "type" or "rename"
    app_label: str
    model_name: str
    model_class: str
    field_name: str
    table: str
    pk_column: str
    #: The column the previous release uses, and the one being added.
    old_column: str
    new_column: str
    old_type: str
    new_type: str
    not_null: bool
    default_sql: str | None = None

    @property
    def key(self) -> str:
        return f"{self.app_label}.{self.model_name}.{self.field_name.lower()}"

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnCopy:
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


def _names(plan: Any, copy: ColumnCopy) -> dict[str, str]:
    base = copy.old_column if copy.mode == "type" else copy.new_column
    return {
        "function": plan.identifier(copy.table, base, suffix="sync"),
        "trigger": plan.identifier(copy.table, base, suffix="sync"),
        "check": plan.identifier(copy.table, copy.new_column, suffix="not_null"),
        "old_kept": plan.identifier(copy.old_column, suffix="_old"),
    }


def _cast(copy: ColumnCopy, source: str) -> str:
    return f"{source}::{copy.new_type}" if copy.mode == "type" else source


def trigger_sql(plan: Any, copy: ColumnCopy) -> tuple[str, str]:
    """(CREATE FUNCTION, CREATE TRIGGER) keeping the new column in step."""
    q = plan.quote
    names = _names(plan, copy)
    old, new = q(copy.old_column), q(copy.new_column)
    if copy.mode == "type":
        body = f"NEW.{new} := {_cast(copy, f'NEW.{old}')};\n  RETURN NEW;"
    else:
        body = (
            "IF TG_OP = 'INSERT' THEN\n"
            f"    IF NEW.{new} IS NULL THEN NEW.{new} := NEW.{old};\n"
            f"    ELSIF NEW.{old} IS NULL THEN NEW.{old} := NEW.{new};\n"
            "    END IF;\n"
            f"  ELSIF NEW.{new} IS DISTINCT FROM OLD.{new} THEN\n"
            f"    NEW.{old} := NEW.{new};\n"
            f"  ELSIF NEW.{old} IS DISTINCT FROM OLD.{old} THEN\n"
            f"    NEW.{new} := NEW.{old};\n"
            "  END IF;\n"
            "  RETURN NEW;"
        )
    function = (
        f"CREATE FUNCTION {q(names['function'])}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  {body}\nEND\n$$"
    )
    trigger = (
        f"CREATE TRIGGER {q(names['trigger'])} BEFORE INSERT OR UPDATE ON {q(copy.table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {q(names['function'])}()"
    )
    return function, trigger


def _drop_trigger(plan: Any, copy: ColumnCopy) -> tuple[str, str]:
    q = plan.quote
    names = _names(plan, copy)
    return (
        f"DROP TRIGGER IF EXISTS {q(names['trigger'])} ON {q(copy.table)}",
        f"DROP FUNCTION IF EXISTS {q(names['function'])}()",
    )


def expand_step(plan: Any, copy: ColumnCopy, *, why: str, title: str, slug: str) -> Step:
    q = plan.quote
    names = _names(plan, copy)
    t, new = q(copy.table), q(copy.new_column)
    add = f"ALTER TABLE {t} ADD COLUMN {new} {copy.new_type} NULL"
    if copy.default_sql:
        add = f"ALTER TABLE {t} ADD COLUMN {new} {copy.new_type} DEFAULT {copy.default_sql} NULL"
    forward = [add, *trigger_sql(plan, copy)]
    backward = [*_drop_trigger(plan, copy), f"ALTER TABLE {t} DROP COLUMN IF EXISTS {new}"]
    if copy.not_null:
        forward.append(
            f"ALTER TABLE {t} ADD CONSTRAINT {q(names['check'])} "
            f"CHECK ({new} IS NOT NULL) NOT VALID"
        )
    return Step(
        strategy=copy.strategy,
        slug=slug,
        phase="expand",
        title=title,
        why=why,
        operations=[plan.sql(tuple(forward), tuple(backward), locks=(copy.table,))],
        locks=frozenset({copy.table}),
        models=frozenset({copy.key}),
    )


def copy_backfill_step(plan: Any, copy: ColumnCopy, *, why: str) -> Step:
    q = plan.quote
    old, new = q(copy.old_column), q(copy.new_column)
    source = _cast(copy, old)
    update_sql = (  # identifiers quoted by Django's backend
        f"UPDATE {q(copy.table)} SET {new} = {source} "  # noqa: S608
        f"WHERE {q(copy.pk_column)} = ANY(%s) AND {new} IS DISTINCT FROM {source}"
    )
    return backfill_step(
        plan,
        strategy=copy.strategy,
        app_label=copy.app_label,
        model_class=copy.model_class,
        model_key=copy.key,
        table=copy.table,
        column=copy.new_column,
        field_name=copy.field_name,
        mode="sql",
        update_sql=update_sql,
        why=why,
        title=f"Copy {copy.table}.{copy.old_column} into {copy.new_column} in batches of "
        f"{plan.batch_size}",
        slug=f"copy_{copy.model_name}_{copy.field_name}",
        function=f"copy_{copy.model_name}_{copy.field_name}",
    )


def validate_step(plan: Any, copy: ColumnCopy) -> Step:
    q = plan.quote
    names = _names(plan, copy)
    return Step(
        strategy=copy.strategy,
        slug=f"validate_{copy.model_name}_{copy.field_name}_copy",
        phase="enforce",
        title=f"Validate CHECK ({copy.new_column} IS NOT NULL) on {copy.table}",
        why=text(copy.strategy, "validate", table=copy.table, column=copy.new_column),
        operations=[
            plan.sql(f"ALTER TABLE {q(copy.table)} VALIDATE CONSTRAINT {q(names['check'])}", None)
        ],
        separate=True,
        scans=frozenset({copy.table}),
        models=frozenset({copy.key}),
    )


def switch_step(
    plan: Any, copy: ColumnCopy, *, state_ops: tuple[Any, ...], why: str, title: str, slug: str
) -> Step:
    q = plan.quote
    names = _names(plan, copy)
    t, old, new = q(copy.table), q(copy.old_column), q(copy.new_column)
    check = q(names["check"])
    forward: list[str] = []
    backward: list[str] = []
    if copy.not_null:
        forward += [
            f"ALTER TABLE {t} ALTER COLUMN {new} SET NOT NULL",
            f"ALTER TABLE {t} DROP CONSTRAINT {check}",
        ]
    if copy.mode == "type":
        kept = q(names["old_kept"])
        forward += list(_drop_trigger(plan, copy))
        if copy.not_null:
            forward.append(f"ALTER TABLE {t} ALTER COLUMN {old} DROP NOT NULL")
        forward += [
            f"ALTER TABLE {t} RENAME COLUMN {old} TO {kept}",
            f"ALTER TABLE {t} RENAME COLUMN {new} TO {old}",
        ]
        # Back to the state before the switch, with the writes made since copied back.
        backward += [
            f"ALTER TABLE {t} RENAME COLUMN {old} TO {new}",
            f"ALTER TABLE {t} RENAME COLUMN {kept} TO {old}",
            f"UPDATE {t} SET {old} = {new}::{copy.old_type} "  # noqa: S608
            f"WHERE {old} IS DISTINCT FROM {new}::{copy.old_type}",
        ]
        if copy.not_null:
            backward.append(f"ALTER TABLE {t} ALTER COLUMN {old} SET NOT NULL")
        backward += list(trigger_sql(plan, copy))
    if copy.not_null:
        backward += [
            f"ALTER TABLE {t} ALTER COLUMN {new} DROP NOT NULL",
            f"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({new} IS NOT NULL) NOT VALID",
        ]
    database: tuple[Any, ...] = ()
    if forward:
        database = (plan.sql(tuple(forward), tuple(backward), locks=(copy.table,)),)
    return Step(
        strategy=copy.strategy,
        slug=slug,
        phase="switch",
        title=title,
        why=why,
        operations=[
            SeparateSpec(
                state=tuple(DjangoOp(o) for o in state_ops),
                database=database,
                comment=(
                    f"The columns swap names in one transaction: {copy.old_column} exists "
                    "before and after, with the new type."
                )
                if copy.mode == "type"
                else "No SQL: the trigger keeps both columns in step.",
            )
        ],
        separate=True,
        locks=frozenset({copy.table}) if database else frozenset(),
        models=frozenset({copy.key}),
    )


def contract_resume(plan: Any, copy: ColumnCopy) -> dict[str, Any]:
    return {"kind": "contract", "copy": copy.as_json()}


def contract_steps(plan: Any, data: Mapping[str, Any], *, why: str) -> list[Step]:
    copy = ColumnCopy.from_json(data["copy"])
    q = plan.quote
    names = _names(plan, copy)
    t = q(copy.table)
    if copy.mode == "type":
        dropped, dropped_type = names["old_kept"], copy.old_type
        forward: tuple[str, ...] = (f"ALTER TABLE {t} DROP COLUMN IF EXISTS {q(dropped)}",)
        backward: tuple[str, ...] = (
            f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {q(dropped)} {dropped_type} NULL",
        )
    else:
        dropped = copy.old_column
        forward = (
            *_drop_trigger(plan, copy),
            f"ALTER TABLE {t} DROP COLUMN IF EXISTS {q(dropped)}",
        )
        backward = (
            f"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {q(dropped)} {copy.old_type} NULL",
            f"UPDATE {t} SET {q(dropped)} = {q(copy.new_column)}",  # noqa: S608
            *trigger_sql(plan, copy),
        )
    return [
        Step(
            strategy=copy.strategy,
            slug=f"drop_{copy.model_name}_{dropped}"[:60],
            phase="contract",
            title=f"Drop the old column {copy.table}.{dropped}",
            why=why,
            operations=[
                plan.sql(
                    forward if len(forward) > 1 else forward[0],
                    backward if len(backward) > 1 else backward[0],
                    comment="The reverse restores the column"
                    + ("; the switch's reverse refills it." if copy.mode == "type" else ".")
                    + "\nThe code left this column in the previous release (the switch): "
                    "no running release uses it.",
                    locks=(copy.table,),
                )
            ],
            locks=frozenset({copy.table}),
            models=frozenset({copy.key}),
        )
    ]
