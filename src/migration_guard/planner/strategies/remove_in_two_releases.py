"""Fields and models removed in two releases: from Django's state now, from the database later.

Answers ``remove-field`` and ``remove-model``. Dropping the column or table in
the release whose code stops using it breaks the previous release, still
running during the deploy (its SELECTs name the column; its INSERTs write it).

* Release 1: ``SeparateDatabaseAndState`` removes the field (or model) from
  Django's state only. What the new code would trip over goes now, catalog-only:
  a NOT NULL column becomes nullable (the new code's INSERTs leave it out), and a
  foreign key constraint is dropped (the new code deletes referenced rows without
  knowing about it) -- both through Django's own AlterField on a copy of the
  field (``null=True``, ``db_constraint=False``), so Django finds the names.
* Release 2, once no running code knows the field: ``DROP COLUMN`` (or ``DROP
  TABLE``, with the tables of its many-to-many fields). Reversible: the reverse
  adds the column back nullable (recreates the table), without the data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations

from ..context import DjangoField, OpContext, PlanContext
from ..model import Chain, DjangoOp, OpSpec, SeparateSpec, Step
from ..writer import text
from .base import FieldFacts, Strategy, clone_field, field_facts

ID = "remove-in-two-releases"


def _fk_with_constraint(field: DjangoField) -> bool:
    return bool(
        field.is_relation
        and (field.many_to_one or field.one_to_one)
        and getattr(field, "db_constraint", False)
    )


def _strip_statement(sql: Any) -> str:
    return str(sql).strip().rstrip(";")


def create_table_sql(plan: PlanContext, state: Any, app_label: str, model_name: str) -> list[str]:
    """CREATE TABLE (and its indexes) of a model, foreign keys without constraints."""
    state = state.clone()
    model_state = state.models[(app_label, model_name)]
    for name, field in list(model_state.fields.items()):
        if _fk_with_constraint(field):
            model_state.fields[name] = clone_field(field, db_constraint=False)
    state.reload_model(app_label, model_name, delay=True)
    model = state.apps.get_model(app_label, model_name)
    editor = plan.editor()
    editor.create_model(model)
    statements = [_strip_statement(s) for s in editor.collected_sql]
    statements += [_strip_statement(s) for s in editor.deferred_sql]
    return [s for s in statements if s]


class RemoveInTwoReleases(Strategy):
    """Field or model removed: from Django's state now, from the database in the next release."""

    id = ID
    rules = ("remove-field", "remove-model")
    summary = "release 1: state only (drop NOT NULL / FK constraint); release 2: DROP COLUMN/TABLE"
    priority = 60

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.RemoveField):
            return ctx.existing(op.model_name)
        if isinstance(op, migrations.DeleteModel):
            model_state = ctx.before.models.get((ctx.app_label, op.name_lower))
            if model_state is None or not ctx.existing(op.name):
                return False
            return not (
                model_state.options.get("proxy") or not model_state.options.get("managed", True)
            )
        return False

    def plan(self, ctx: OpContext) -> Chain:
        if isinstance(ctx.operation, migrations.RemoveField):
            return self._remove_field(ctx)
        return self._delete_model(ctx)

    # -- RemoveField ---------------------------------------------------------------------
    def _remove_field(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        model_state = ctx.before.models[(ctx.app_label, op.model_name_lower)]
        state_field = model_state.fields[op.name]
        facts = field_facts(ctx, op.model_name, op.name, state_field, after=False)
        database: list[OpSpec] = []
        changes = []
        if state_field.many_to_many:
            resume = self._m2m_resume(ctx, facts.field)
            what = f"the table {resume['tables'][0]} of {facts.model_class}.{op.name}"
        else:
            copy: dict[str, Any] = {}
            if not facts.null:
                copy["null"] = True
                changes.append("drop NOT NULL")
            if _fk_with_constraint(facts.field):
                copy["db_constraint"] = False
                changes.append("drop the foreign key constraint")
            if copy:
                database.append(
                    DjangoOp(
                        migrations.AlterField(
                            model_name=op.model_name,
                            name=op.name,
                            field=clone_field(state_field, **copy),
                        ),
                        comment="Catalog-only: what the new code would trip over ("
                        + " and ".join(changes)
                        + ").",
                    )
                )
            q = plan.quote
            resume = {
                "kind": "drop_column",
                "app_label": ctx.app_label,
                "model_name": facts.model_name,
                "field": op.name,
                "table": facts.table,
                "drop": [f"ALTER TABLE {q(facts.table)} DROP COLUMN IF EXISTS {q(facts.column)}"],
                "restore": [
                    f"ALTER TABLE {q(facts.table)} ADD COLUMN IF NOT EXISTS "
                    + _nullable_definition(plan, facts)
                ],
            }
            what = f"the column {facts.label}"
        first = Step(
            strategy=ID,
            slug=f"remove_{facts.model_name}_{op.name}_from_state",
            phase="change",
            title=f"Remove {facts.model_class}.{op.name} from Django's state only"
            + (f" ({', '.join(changes)})" if changes else ""),
            why=text(ID, "state_field", what=what, changes=changes, table=facts.table),
            operations=[
                SeparateSpec(
                    state=(ctx.spec(),),
                    database=tuple(database),
                    comment="" if database else "No SQL: the column stays until the next release.",
                )
            ],
            locks=frozenset({facts.table}) if database else frozenset(),
            models=frozenset({facts.key}),
        )
        later = self._later(resume, f"Drop {what}", facts.key)
        return Chain(strategy=ID, steps=[first, later], index=ctx.index)

    def _m2m_resume(self, ctx: OpContext, field: Any) -> dict[str, Any]:
        plan = ctx.plan
        through = field.remote_field.through
        table = through._meta.db_table
        if not through._meta.auto_created:
            return {"kind": "drop_table", "tables": [], "restore": [], "app_label": ctx.app_label}
        editor = plan.editor()
        editor.create_model(through)
        restore = [_strip_statement(s) for s in editor.collected_sql]
        restore += [_strip_statement(s) for s in editor.deferred_sql]
        return {
            "kind": "drop_table",
            "app_label": ctx.app_label,
            "tables": [table],
            "drop": [f"DROP TABLE IF EXISTS {plan.quote(table)}"],
            "restore": [s for s in restore if s],
        }

    # -- DeleteModel -------------------------------------------------------------------
    def _delete_model(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        model = ctx.model_before(op.name)
        model_state = ctx.before.models[(ctx.app_label, op.name_lower)]
        table = model._meta.db_table
        database: list[OpSpec] = []
        for name, field in model_state.fields.items():
            if _fk_with_constraint(field):
                database.append(
                    DjangoOp(
                        migrations.AlterField(
                            model_name=op.name_lower,
                            name=name,
                            field=clone_field(field, db_constraint=False),
                        )
                    )
                )
        q = plan.quote
        tables: list[str] = []
        drops: list[str] = []
        restore: list[str] = []
        for field in model._meta.local_many_to_many:
            through = field.remote_field.through
            if through._meta.auto_created:
                tables.append(through._meta.db_table)
                drops.append(f"DROP TABLE IF EXISTS {q(through._meta.db_table)}")
                for fk in through._meta.local_fields:
                    if _fk_with_constraint(fk):
                        name = str(
                            plan.editor()._fk_constraint_name(
                                through, fk, "_fk_%(to_table)s_%(to_column)s"
                            )
                        )
                        database.append(
                            plan.sql(
                                f"ALTER TABLE {q(through._meta.db_table)} "
                                f"DROP CONSTRAINT IF EXISTS {name}",
                                str(
                                    plan.editor()._create_fk_sql(
                                        through, fk, "_fk_%(to_table)s_%(to_column)s"
                                    )
                                ),
                                locks=(through._meta.db_table,),
                            )
                        )
        tables.append(table)
        drops.append(f"DROP TABLE IF EXISTS {q(table)}")
        restore = create_table_sql(plan, ctx.before, ctx.app_label, op.name_lower)
        first = Step(
            strategy=ID,
            slug=f"delete_{op.name_lower}_from_state",
            phase="change",
            title=f"Remove the model {op.name} from Django's state only"
            + (" (drop its foreign key constraints)" if database else ""),
            why=text(ID, "state_model", table=table, fks=bool(database)),
            operations=[
                SeparateSpec(
                    state=(ctx.spec(),),
                    database=tuple(database),
                    comment="" if database else "No SQL: the table stays until the next release.",
                )
            ],
            locks=frozenset({table}) if database else frozenset(),
            models=frozenset({f"{ctx.app_label}.{op.name_lower}"}),
        )
        resume = {
            "kind": "drop_table",
            "app_label": ctx.app_label,
            "tables": tables,
            "drop": drops,
            "restore": restore,
        }
        later = self._later(resume, f"Drop the table {table}", f"{ctx.app_label}.{op.name_lower}")
        return Chain(strategy=ID, steps=[first, later], index=ctx.index)

    def _later(self, resume: dict[str, Any], title: str, key: str) -> Step:
        return Step(
            strategy=ID,
            slug=title.lower().replace(" ", "_").replace(".", "_")[:50],
            phase="contract",
            title=title,
            why="",
            operations=[],
            release=2,
            resume=resume,
            models=frozenset({key}),
        )

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        kind = data.get("kind")
        if kind not in ("drop_column", "drop_table"):
            raise ValueError(f"unknown {ID} step {kind!r}")
        drops = tuple(data.get("drop", ()))
        if not drops:
            return []
        restore = tuple(data.get("restore", ())) or None
        if kind == "drop_column":
            title = f"Drop the column {data['table']}.{_column_of(drops[0])}"
            slug = f"drop_{data['model_name']}_{data['field']}"
            why = text(ID, "drop_column", table=data["table"])
        else:
            title = f"Drop the table(s) {', '.join(data['tables'])}"
            slug = f"drop_{data['tables'][-1]}"
            why = text(ID, "drop_table", tables=data["tables"])
        op = plan.sql(
            drops if len(drops) > 1 else drops[0],
            restore if restore is None or len(restore) > 1 else restore[0],
            comment="The reverse restores the structure, not the data.\n"
            "It left Django's state in the previous release: no running release uses it.",
            locks=tuple(data.get("tables", ())) or (data.get("table", ""),),
        )
        return [
            Step(
                strategy=ID,
                slug=slug[:60],
                phase="contract",
                title=title,
                why=why,
                operations=[op],
                locks=frozenset(op.locks),
                models=frozenset({f"{data['app_label']}.{data.get('model_name', '')}"}),
            )
        ]


def _column_of(drop: str) -> str:
    return drop.rsplit(" ", 1)[-1].strip('"')


def _nullable_definition(plan: PlanContext, facts: FieldFacts) -> str:
    q = plan.quote
    parts = [q(facts.column), facts.db_type]
    if facts.collation:
        parts.append(f"COLLATE {q(facts.collation)}")
    parts.append("NULL")
    return " ".join(parts)
