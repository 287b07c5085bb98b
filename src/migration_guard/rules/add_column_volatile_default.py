"""ADD COLUMN whose default must be computed per row: a table rewrite."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import actions, without_strings
from .base import Prediction, Rule

if TYPE_CHECKING:
    from ..collect import OperationRecord
    from ..sqlfacts import AlterAction
    from .base import RuleContext

_SERIAL_TYPES = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})


def volatile_call(expression: str | None) -> str | None:
    """The first function ``expression`` calls that PostgreSQL evaluates per row, lowercased.

    PostgreSQL decides (``pg_proc.provolatile``): the scratch server's catalog during
    an audit, the snapshot of it (:mod:`migration_guard.sqlfacts`) otherwise. A function
    neither knows counts as VOLATILE, PostgreSQL's default. ``now()`` and the other
    STABLE functions are evaluated once for the ALTER TABLE: no rewrite.
    """
    return sqlfacts.volatility().first_volatile(without_strings(expression or ""))


def _is_null(expression: str) -> bool:
    return re.fullmatch(r"[\s(]*null[\s)]*(?:::.*)?", expression, re.IGNORECASE) is not None


class AddColumnVolatileDefault(Rule):
    """Adding a column with a volatile default rewrites the whole table.

    **What it flags.** ``ALTER TABLE ... ADD COLUMN`` on a table that existed
    before the change, when every existing row needs its own value: a
    ``DEFAULT`` that calls a function PostgreSQL marks VOLATILE
    (``gen_random_uuid()``, ``uuid_generate_v4()``, ``random()``,
    ``clock_timestamp()``, ``nextval(...)``), a ``serial``/``bigserial`` or
    identity column, or a
    ``GENERATED ALWAYS AS (...) STORED`` column. Django 5.0+ writes these for
    ``db_default=RandomUUID()`` and ``GeneratedField(db_persist=True)``;
    ``RunSQL`` does it by hand::

        migrations.RunSQL(
            "ALTER TABLE shop_order ADD COLUMN public_id uuid DEFAULT gen_random_uuid()"
        )

    PostgreSQL itself says which functions are VOLATILE: ``pg_proc.provolatile``
    on the scratch server, read after the migrations before the one judged, so
    extensions and the project's own functions count with their declared
    volatility. Without a server (the planner writing files) a snapshot of that
    catalog answers, and a function it does not know counts as VOLATILE, as
    PostgreSQL creates a function declared without one.

    Constant and STABLE defaults (``0``, ``'draft'``, ``now()``,
    ``statement_timestamp()``, which Django's ``db_default=Now()`` uses) are
    catalog-only on PostgreSQL 11+ and not flagged; before 11, any non-NULL
    default rewrites the table and is flagged. Django's own
    ``AddField(default=uuid.uuid4)`` is not flagged either: Django computes
    one value in Python and drops the DEFAULT right after.

    **Lock.** ACCESS EXCLUSIVE on the table, which blocks reads and writes,
    while PostgreSQL writes a new copy of every row with its computed value
    and rebuilds every index: for a time proportional to the table's size.

    **Safe alternative.** Add the column without a default (nullable), set the
    default afterwards (it then applies to new rows only), and fill the
    existing rows in batches outside the DDL transaction::

        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField("order", "public_id",
                                    models.UUIDField(null=True, default=uuid.uuid4)),
            ],
            database_operations=[
                migrations.RunSQL(
                    [
                        "ALTER TABLE shop_order ADD COLUMN public_id uuid NULL",
                        "ALTER TABLE shop_order ALTER COLUMN public_id "
                        "SET DEFAULT gen_random_uuid()",
                    ],
                    "ALTER TABLE shop_order DROP COLUMN public_id",
                ),
            ],
        )
        # next migration, atomic = False: UPDATE ... WHERE id BETWEEN ... in batches

    A generated column becomes a plain nullable column kept up to date by the
    application or a trigger, backfilled in batches the same way.

    **References.**
    https://www.postgresql.org/docs/current/sql-altertable.html (Notes: adding
    a column with a volatile DEFAULT, an identity or a stored generated column
    rewrites the table),
    https://www.postgresql.org/docs/current/xfunc-volatility.html (function
    volatility categories).
    """

    id = "add-column-volatile-default"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", rewrite=True)
    plannable = True

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterator[Finding]:
        for stmt, facts, action in actions(op, sqlfacts.ADD_COLUMN):
            table = facts.table
            if not table or not action.column:
                continue
            why = self._why(action, ctx)
            if why is None:
                continue
            yield ctx.finding(
                self,
                op,
                f"{op.kind} adds {table}.{action.column} with {why}, so PostgreSQL computes a "
                f"value for every existing row: it rewrites {table} and rebuilds its indexes "
                "under an ACCESS EXCLUSIVE lock, and reads and writes of "
                f"{table} wait until the rewrite is done.",
                self._fix(action),
                table=table,
                sql=[stmt.sql],
                lock="AccessExclusiveLock",
            )

    @staticmethod
    def _why(action: AlterAction, ctx: RuleContext) -> str | None:
        if action.generated_stored:
            return "GENERATED ALWAYS AS (...) STORED"
        if action.identity:
            if action.data_type in _SERIAL_TYPES:
                return f"type {action.data_type} (a sequence default)"
            return "GENERATED ... AS IDENTITY"
        default = action.default
        if not default:
            return None
        func = volatile_call(default)
        if func is not None:
            return f"DEFAULT {default} ({func}() is volatile)"
        if not ctx.pg.add_column_constant_default_is_instant and not _is_null(default):
            return f"DEFAULT {default} (before PostgreSQL 11 every default is written to each row)"
        return None

    @staticmethod
    def _fix(action: AlterAction) -> str:
        column = action.column
        if action.generated_stored:
            return (
                f"Add {column} as a plain nullable column (AddField, null=True), keep it up to "
                "date from the application or a trigger, and backfill it in batches from an "
                "atomic = False migration."
            )
        if action.identity:
            return (
                f"Add {column} nullable without a default, then ALTER COLUMN ... SET DEFAULT "
                "nextval(...) (new rows only), backfill in batches from an atomic = False "
                "migration, and make it NOT NULL with a CHECK ... NOT VALID constraint."
            )
        return (
            f"Add {column} without a default (nullable), then ALTER COLUMN {column} SET DEFAULT "
            "in a separate statement (new rows only), and backfill existing rows in batches from "
            "an atomic = False migration; use SeparateDatabaseAndState with RunSQL to keep "
            "Django's state in step."
        )
