"""A table renamed for real: rename it, and leave a view under the old name for one release.

Answers ``alter-db-table`` (and ``rename-model`` with ``--full-rename``). The
previous release keeps querying the old table name during the deploy.

1. (atomic, release 1) ``ALTER TABLE old RENAME TO new`` and ``CREATE VIEW old
   AS SELECT * FROM new``: catalog-only. A simple view is automatically
   updatable, so the previous release's SELECT, INSERT, UPDATE and DELETE go
   through it. Django's state gets the new name (SeparateDatabaseAndState).
2. (release 2) ``DROP VIEW old`` once no running code uses the old name.

Tables with many-to-many join tables named after them are left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import migrations

from ..context import OpContext, PlanContext
from ..model import Chain, DjangoOp, SeparateSpec, Step
from ..writer import text
from .base import Strategy
from .rename_state_only import m2m_named_after

ID = "rename-table-with-view"


class RenameTableWithView(Strategy):
    """Table renamed: RENAME + a compatibility view under the old name, view dropped later."""

    id = ID
    rules = ("alter-db-table", "rename-model")
    summary = "ALTER TABLE ... RENAME + CREATE VIEW <old name>; next release: DROP VIEW"
    priority = 56

    def matches(self, ctx: OpContext) -> bool:
        op = ctx.operation
        if isinstance(op, migrations.AlterModelTable):
            name = op.name
        elif isinstance(op, migrations.RenameModel) and ctx.plan.full_rename:
            name = op.old_name
        else:
            return False
        if not ctx.existing(name):
            return False
        old, new = self._tables(ctx)
        return old != new and not m2m_named_after(ctx, name)

    def _tables(self, ctx: OpContext) -> tuple[str, str]:
        op = ctx.operation
        if isinstance(op, migrations.AlterModelTable):
            return (
                ctx.model_before(op.name)._meta.db_table,
                ctx.model_after(op.name)._meta.db_table,
            )
        return (
            ctx.model_before(op.old_name)._meta.db_table,
            ctx.model_after(op.new_name)._meta.db_table,
        )

    def plan(self, ctx: OpContext) -> Chain:
        op = ctx.operation
        plan = ctx.plan
        q = plan.quote
        old, new = self._tables(ctx)
        forward = (
            f"ALTER TABLE {q(old)} RENAME TO {q(new)}",
            f"CREATE VIEW {q(old)} AS SELECT * FROM {q(new)}",  # noqa: S608 - quoted names
        )
        backward = (
            f"DROP VIEW IF EXISTS {q(old)}",
            f"ALTER TABLE {q(new)} RENAME TO {q(old)}",
        )
        names = {getattr(op, "name_lower", None), getattr(op, "old_name_lower", None)}
        names |= {getattr(op, "new_name_lower", None)}
        keys = frozenset(f"{ctx.app_label}.{n}" for n in names if n)
        first = Step(
            strategy=ID,
            slug=f"rename_table_{old}"[:60],
            phase="expand",
            title=f"Rename the table {old} to {new}, with a view named {old}",
            why=text(ID, "rename", old=old, new=new),
            operations=[
                SeparateSpec(
                    state=(
                        ctx.spec() if isinstance(op, migrations.AlterModelTable) else DjangoOp(op),
                    ),
                    database=(plan.sql(forward, backward, locks=(old,)),),
                )
            ],
            locks=frozenset({old}),
            models=keys,
        )
        later = Step(
            strategy=ID,
            slug=f"drop_view_{old}"[:60],
            phase="contract",
            title=f"Drop the compatibility view {old}",
            why="",
            operations=[],
            release=2,
            resume={"kind": "drop_view", "app_label": ctx.app_label, "old": old, "new": new},
            models=keys,
        )
        return Chain(strategy=ID, steps=[first, later], index=ctx.index)

    def resume(self, data: Mapping[str, Any], plan: PlanContext) -> list[Step]:
        q = plan.quote
        old, new = data["old"], data["new"]
        return [
            Step(
                strategy=ID,
                slug=f"drop_view_{old}"[:60],
                phase="contract",
                title=f"Drop the compatibility view {old}",
                why=text(ID, "drop_view", old=old),
                operations=[
                    plan.sql(
                        f"DROP VIEW IF EXISTS {q(old)}",
                        f"CREATE VIEW {q(old)} AS SELECT * FROM {q(new)}",  # noqa: S608
                    )
                ],
                models=frozenset({f"{data['app_label']}.{old}"}),
            )
        ]
