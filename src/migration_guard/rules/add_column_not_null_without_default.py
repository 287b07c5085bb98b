"""ADD COLUMN ... NOT NULL without a default on a table that has rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Rule, alter_actions

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from .base import RuleContext


class AddColumnNotNullWithoutDefault(Rule):
    """A NOT NULL column added without a default fails on a table with rows.

    **What it flags.** ``ALTER TABLE ... ADD COLUMN ... NOT NULL`` with no
    ``DEFAULT`` (and not an identity, serial or generated column) on a table
    that existed before the change. Django never writes this for its own
    fields (it asks for a one-off default), but third-party fields and
    ``RunSQL`` do, e.g. a full-text column::

        ALTER TABLE "search_entry" ADD COLUMN "document" tsvector NOT NULL

    The scratch database the audit runs on has empty tables, so the migration
    applies there; in production PostgreSQL must give every existing row a value
    and has none, so the statement fails with ``column ... contains null values``
    and the deploy stops.

    **Lock.** ACCESS EXCLUSIVE on the table while it is checked (reads and
    writes wait), then the error rolls the migration back.

    **Safe alternative.** Add the column nullable (or with a constant
    ``DEFAULT``, instant since PostgreSQL 11), fill it in batches, then make it
    NOT NULL with a validated ``CHECK (col IS NOT NULL)``::

        ALTER TABLE "search_entry" ADD COLUMN "document" tsvector NULL;
        -- backfill in batches, then CHECK ... NOT VALID, VALIDATE, SET NOT NULL

    **References.** https://www.postgresql.org/docs/current/sql-altertable.html
    (ADD COLUMN, "Notes").
    """

    id = "add-column-not-null-without-default"
    severity = Severity.ERROR
    category = Category.CORRECTNESS
    only_existing_tables = True
    plannable = False

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        for stmt, facts, action in alter_actions(op, sqlfacts.ADD_COLUMN):
            if not (action.not_null or action.inline_primary_key):
                continue
            if action.default is not None or action.identity or action.generated_stored:
                continue
            if (action.data_type or "").split("(")[0].strip() in _SERIAL:
                continue
            table = facts.table
            if not table or not ctx.is_existing(table):
                continue
            yield ctx.finding(
                self,
                op,
                f"{op.kind} adds {table}.{action.column} NOT NULL with no default: on a "
                f"{table} that has rows, PostgreSQL has no value for them and the statement "
                f'fails with "column {action.column} ... contains null values", stopping the '
                "deploy. The audit's scratch tables are empty, so it applied there.",
                f"Add {action.column} nullable (or with a constant DEFAULT), backfill it in "
                "batches, then enforce NOT NULL with a validated CHECK in a later migration.",
                table=table,
                sql=[stmt.sql],
                lock="AccessExclusiveLock",
            )


_SERIAL = frozenset({"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"})
