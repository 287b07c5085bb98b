"""Renames in Django's state only: the column or table keeps its name, no SQL at all.

Answers ``rename-field`` and ``rename-model``. Renaming a column or a table
breaks the previous release at once (its queries name the old one). The code
can use the new name without the database changing:

* ``RenameField``: the field keeps its column through ``db_column=<old
  column>``; a SeparateDatabaseAndState with ``AlterField`` (adding db_column)
  then ``RenameField`` for the state and no database operation. models.py gets
  the ``db_column`` too, so state and models stay equal.
* ``RenameModel``: the model keeps its table through ``Meta.db_table = <old
  table>`` (``AlterModelTable`` then ``RenameModel`` in the state); models.py gets
  the ``db_table``.

A full rename of the table is offered as ``--full-rename`` (see
``rename_table_with_view``); of a column, as an expand/contract of the column
(``rename_column_expand_contract``). Models with many-to-many tables named after
them are left as they are: their join tables would need renaming too.
"""

from __future__ import annotations

from django.db import migrations

from ..context import OpContext
from ..model import Chain, DjangoOp, ModelEdit, SeparateSpec, Step
from ..writer import text
from .base import Strategy, clone_field

ID = "rename-state-only"


def m2m_named_after(ctx: OpContext, model_name: str) -> list[str]:
    """Auto-created many-to-many tables whose names or columns follow the model's."""
    model = ctx.model_before(model_name)
    out = []
    for field in model._meta.local_many_to_many:
        if field.remote_field.through._meta.auto_created:
            out.append(field.remote_field.through._meta.db_table)
    for related in model._meta.related_objects:
        if related.many_to_many and related.through._meta.auto_created:
            out.append(related.through._meta.db_table)
    return out


class RenameStateOnly(Strategy):
    """Field or model renamed: in Django's state only, the old column or table name kept."""

    id = ID
    rules = ("rename-field", "rename-model")
    summary = "state-only rename; models keep the old db_column / db_table (no SQL)"
    priority = 55

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.RenameField):
            if not ctx.existing(op.model_name):
                return False
            old = ctx.model_before(op.model_name)._meta.get_field(op.old_name)
            new = ctx.model_after(op.model_name)._meta.get_field(op.new_name)
            return old.column != new.column and not old.many_to_many
        if isinstance(op, migrations.RenameModel):
            if ctx.plan.full_rename or not ctx.existing(op.old_name):
                return False
            old = ctx.model_before(op.old_name)
            new = ctx.model_after(op.new_name)
            return old._meta.db_table != new._meta.db_table and not m2m_named_after(
                ctx, op.old_name
            )
        return False

    def plan(self, ctx: OpContext) -> Chain:
        if isinstance(ctx.operation, migrations.RenameField):
            return self._field(ctx)
        return self._model(ctx)

    def _field(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        if plan.changed_later(op.model_name, op.new_name, kinds=("alter", "rename")):
            # A later migration redefines the field written against the renamed column: with
            # the old column kept here, that migration would rename the column instead.
            return Chain.left_alone(
                ID,
                ctx.index,
                f"{op.model_name}.{op.old_name} -> {op.new_name}: a later migration of the "
                "history changes the field again and was written for the renamed column; "
                "a state-only rename here would move the RENAME COLUMN into that migration. "
                "Carried over as it is: plan the rename where the field's history ends.",
            )
        model_state = ctx.before.models[(ctx.app_label, op.model_name_lower)]
        old = ctx.model_before(op.model_name)._meta.get_field(op.old_name)
        after_model = ctx.model_after(op.model_name)
        kept = clone_field(model_state.fields[op.old_name], db_column=old.column)
        table = after_model._meta.db_table
        step = Step(
            strategy=ID,
            slug=f"rename_{op.model_name_lower}_{op.old_name}_{op.new_name}",
            phase="change",
            title=f"Rename {after_model.__name__}.{op.old_name} to {op.new_name} in Django's "
            f"state only (the column stays {old.column})",
            why=text(ID, "field", table=table, column=old.column, new=op.new_name),
            operations=[
                SeparateSpec(
                    state=(
                        DjangoOp(
                            migrations.AlterField(
                                model_name=op.model_name, name=op.old_name, field=kept
                            )
                        ),
                        DjangoOp(
                            migrations.RenameField(
                                model_name=op.model_name,
                                old_name=op.old_name,
                                new_name=op.new_name,
                            )
                        ),
                    ),
                    database=(),
                    comment=f"No SQL: the column keeps its name ({old.column}).",
                )
            ],
            models=frozenset(
                {
                    f"{ctx.app_label}.{op.model_name_lower}.{op.old_name_lower}",
                    f"{ctx.app_label}.{op.model_name_lower}.{op.new_name_lower}",
                }
            ),
        )
        edit = ModelEdit(
            app_label=ctx.app_label,
            model=after_model.__name__,
            field=op.new_name,
            option="db_column",
            source=repr(old.column),
            value=old.column,
            reason=f"keep the column {old.column}",
        )
        removed_later = plan.changed_later(op.model_name, op.new_name, kinds=("remove",))
        edits = [] if removed_later else [edit]
        chain = Chain(strategy=ID, steps=[step], edits=edits, index=ctx.index)
        chain.notes.append(
            f"{after_model.__name__}.{op.new_name} keeps the column {old.column} "
            f"(db_column); a full rename of the column is an expand/contract: change db_column "
            f"in the model later and plan that change."
        )
        return chain

    def _model(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        if ctx.plan.changed_later(op.new_name, kinds=("rename",)):
            return Chain.left_alone(
                ID,
                ctx.index,
                f"model {op.old_name} -> {op.new_name}: a later migration of the history "
                "renames it or its table again; a state-only rename here would move the "
                "table rename into that migration. Carried over as it is.",
            )
        old = ctx.model_before(op.old_name)
        new = ctx.model_after(op.new_name)
        table = old._meta.db_table
        step = Step(
            strategy=ID,
            slug=f"rename_{op.old_name_lower}_{op.new_name_lower}",
            phase="change",
            title=f"Rename the model {op.old_name} to {op.new_name} in Django's state only "
            f"(the table stays {table})",
            why=text(ID, "model", table=table, new=op.new_name),
            operations=[
                SeparateSpec(
                    state=(
                        DjangoOp(migrations.AlterModelTable(name=op.old_name, table=table)),
                        DjangoOp(
                            migrations.RenameModel(old_name=op.old_name, new_name=op.new_name)
                        ),
                    ),
                    database=(),
                    comment=f"No SQL: the table keeps its name ({table}).",
                )
            ],
            models=frozenset(
                {f"{ctx.app_label}.{op.old_name_lower}", f"{ctx.app_label}.{op.new_name_lower}"}
            ),
        )
        edit = ModelEdit(
            app_label=ctx.app_label,
            model=new.__name__,
            field=None,
            option="db_table",
            source=repr(table),
            value=table,
            reason=f"keep the table {table}",
        )
        removed_later = ctx.plan.changed_later(op.new_name, kinds=("remove",))
        chain = Chain(
            strategy=ID, steps=[step], edits=[] if removed_later else [edit], index=ctx.index
        )
        chain.notes.append(
            f"{op.new_name} keeps the table {table} (Meta.db_table); plan_zero_downtime "
            "--full-rename renames the table too, with a view under the old name for the "
            "previous release."
        )
        return chain
