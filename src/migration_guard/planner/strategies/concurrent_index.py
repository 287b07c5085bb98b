"""Indexes built and removed CONCURRENTLY, in non-atomic migrations.

Answers ``add-index-non-concurrent`` and ``drop-index-non-concurrent``.
``CREATE INDEX`` holds SHARE on the table for the whole build (writes wait) and
``DROP INDEX`` takes ACCESS EXCLUSIVE; their ``CONCURRENTLY`` forms take SHARE
UPDATE EXCLUSIVE, which blocks neither reads nor writes, and cannot run in a
transaction (``atomic = False``).

* ``AddIndex`` / ``RemoveIndex`` -> SeparateDatabaseAndState: the operation for
  the state, ``RunSQL CREATE INDEX CONCURRENTLY IF NOT EXISTS`` (``DROP INDEX
  CONCURRENTLY IF EXISTS``) for the database. Not Django's
  ``AddIndexConcurrently``, whose statement fails when run again: every statement
  of a non-atomic migration must be safe to retry after a lock timeout.
* ``db_index`` added or removed by an ``AlterField`` -> SeparateDatabaseAndState:
  the AlterField for the state, ``RunSQL CREATE INDEX CONCURRENTLY`` (or ``DROP
  INDEX CONCURRENTLY``) with Django's own index names (and the ``_like``
  pattern-ops index Django adds for varchar/text).
* ``index_together`` changed by ``AlterIndexTogether`` -> the same, with
  Django's ``_idx`` names.
* a new field with ``db_index=True``: the index is a follow-up step of the column.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations

from ..context import OpContext
from ..model import Chain, DjangoOp, OpSpec, SeparateSpec
from ..steps import build_ops, build_step, concurrent_create, field_index_sql, index_op
from ..writer import text
from .base import (
    FieldFacts,
    FieldPart,
    Strategy,
    new_field_strategy,
    plain_new_field,
    together,
)
from .set_not_null import altered_field, db_kwargs_differ

ID = "concurrent-index"


class ConcurrentIndex(Strategy):
    """Index added or removed: CREATE/DROP INDEX CONCURRENTLY in a non-atomic migration."""

    id = ID
    rules = ("add-index-non-concurrent", "drop-index-non-concurrent")
    summary = (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS / DROP INDEX CONCURRENTLY IF EXISTS, "
        "atomic = False"
    )
    priority = 50

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.AddField):
            return new_field_strategy(ctx) == ID
        if isinstance(op, (AddIndexConcurrently, RemoveIndexConcurrently)):
            return False
        if isinstance(op, (migrations.AddIndex, migrations.RemoveIndex)):
            return ctx.existing(op.model_name)
        if isinstance(op, migrations.AlterIndexTogether):
            return ctx.existing(op.name)
        fields = altered_field(ctx)
        if fields is None:
            return False
        old, new = fields
        changed = db_kwargs_differ(old, new)
        return changed == {"db_index"} and not new.unique and not old.unique

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        if isinstance(op, migrations.AddField):
            return plain_new_field(ctx, ID, "its index", text(ID, "new_field"))
        if isinstance(op, migrations.AddIndex):
            return self._add_index(ctx)
        if isinstance(op, migrations.RemoveIndex):
            return self._remove_index(ctx)
        if isinstance(op, migrations.AlterIndexTogether):
            return self._index_together(ctx)
        return self._db_index(ctx)

    # -- AddIndex / RemoveIndex -------------------------------------------------------
    def _add_index(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        model = ctx.model_after(op.model_name)
        editor = ctx.plan.editor()
        table = model._meta.db_table
        step = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"add_{op.index.name}"[:60],
            title=f"Build index {op.index.name} on {table} CONCURRENTLY",
            why=text(ID, "add", table=table, name=op.index.name),
            operations=[
                SeparateSpec(
                    state=(ctx.spec(),),
                    database=(
                        index_op(
                            ctx.plan,
                            concurrent_create(
                                str(op.index.create_sql(model, editor, concurrently=True))
                            ),
                            op.index.name,
                        ),
                    ),
                )
            ],
            names=[op.index.name],
            key=f"{ctx.app_label}.{model._meta.model_name}",
        )
        return Chain(strategy=ID, steps=[step], index=ctx.index)

    def _remove_index(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        model = ctx.model_before(op.model_name)
        index = ctx.before.models[(ctx.app_label, op.model_name_lower)].get_index_by_name(op.name)
        create = str(index.create_sql(model, ctx.plan.editor(), concurrently=True))
        table = model._meta.db_table
        step = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"remove_{op.name}"[:60],
            title=f"Drop index {op.name} on {table} CONCURRENTLY",
            why=text(ID, "remove", table=table, name=op.name),
            operations=[
                SeparateSpec(
                    state=(ctx.spec(),),
                    database=(
                        index_op(ctx.plan, concurrent_create(create), op.name, create=False),
                    ),
                )
            ],
            names=[],
            key=f"{ctx.app_label}.{model._meta.model_name}",
        )
        return Chain(strategy=ID, steps=[step], index=ctx.index)

    # -- db_index on a field -------------------------------------------------------------
    def _db_index(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        old, new = altered_field(ctx)  # type: ignore[misc]
        adding = bool(new.db_index)
        model = ctx.model_after(op.model_name) if adding else ctx.model_before(op.model_name)
        field = new if adding else old
        pairs = field_index_sql(ctx.plan, model, field)
        table = model._meta.db_table
        names = [name for _c, _d, name in pairs]
        state = migrations.AlterField(model_name=op.model_name, name=op.name, field=op.field)
        step = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"{'index' if adding else 'unindex'}_{model._meta.model_name}_{op.name}",
            title=f"{'Build' if adding else 'Drop'} the index of {table}.{field.column} "
            "CONCURRENTLY",
            why=text(ID, "db_index", table=table, column=field.column, adding=adding, names=names),
            operations=[
                SeparateSpec(
                    state=(DjangoOp(state),),
                    database=tuple(build_ops(pairs, ctx.plan, create=adding)),
                )
            ],
            names=names if adding else [],
            key=f"{ctx.app_label}.{model._meta.model_name}.{op.name.lower()}",
        )
        return Chain(strategy=ID, steps=[step], index=ctx.index)

    # -- index_together ---------------------------------------------------------------
    def _index_together(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        before = ctx.model_before(op.name)
        after = ctx.model_after(op.name)
        olds = together(ctx.before, ctx.app_label, op.name_lower, "index_together")
        news = together(ctx.after, ctx.app_label, op.name_lower, "index_together")
        editor = ctx.plan.editor()
        table = after._meta.db_table
        database: list[OpSpec] = []
        names: list[str] = []
        for fields in sorted(olds - news):
            columns = [before._meta.get_field(f).column for f in fields]
            name = editor._create_index_name(before._meta.db_table, columns, suffix="_idx")
            create = concurrent_create(
                str(
                    editor._create_index_sql(
                        before,
                        fields=[before._meta.get_field(f) for f in fields],
                        name=name,
                        concurrently=True,
                    )
                )
            )
            database.append(index_op(ctx.plan, create, name, create=False))
        for fields in sorted(news - olds):
            columns = [after._meta.get_field(f).column for f in fields]
            name = editor._create_index_name(table, columns, suffix="_idx")
            create = concurrent_create(
                str(
                    editor._create_index_sql(
                        after,
                        fields=[after._meta.get_field(f) for f in fields],
                        name=name,
                        concurrently=True,
                    )
                )
            )
            names.append(name)
            database.append(index_op(ctx.plan, create, name))
        step = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"alter_{op.name_lower}_index_together",
            title=f"index_together of {op.name} on {table}, CONCURRENTLY",
            why=text(ID, "index_together", table=table),
            operations=[SeparateSpec(state=(source_op(ctx),), database=tuple(database))],
            names=names,
            key=f"{ctx.app_label}.{op.name_lower}",
        )
        return Chain(strategy=ID, steps=[step], index=ctx.index)

    # -- a new field's index -------------------------------------------------------------
    def field_followups(self, ctx: OpContext, facts: FieldFacts) -> FieldPart | None:
        if not facts.index or facts.foreign_key:
            return None
        model = ctx.model_after(facts.model_name)
        pairs = field_index_sql(ctx.plan, model, facts.field)
        names = [name for _c, _d, name in pairs]
        step = build_step(
            ctx.plan,
            strategy=ID,
            slug=f"index_{facts.model_name}_{facts.name}",
            title=f"Build the index of {facts.label} CONCURRENTLY",
            why=text(
                ID, "db_index", table=facts.table, column=facts.column, adding=True, names=names
            ),
            operations=list(build_ops(pairs, ctx.plan)),
            names=names,
            key=facts.key,
        )
        return FieldPart(steps=[step])


def source_op(ctx: OpContext) -> Any:
    return ctx.spec()


__all__ = ["ConcurrentIndex"]
