"""A NOT NULL column added without a database default breaks the previous release's INSERTs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import made_earlier, migration_statements
from .base import Rule

if TYPE_CHECKING:
    from ..collect import ExecutedStatement, MigrationRecord, OperationRecord
    from .base import RuleContext


@dataclasses.dataclass
class _Added:
    op: OperationRecord
    stmt: ExecutedStatement
    default: str | None
    not_null: bool = True
    #: Django added the column with a one-off DEFAULT and dropped it again.
    dropped_default: bool = False


def _default(expression: str | None) -> str | None:
    if expression is None or expression.strip().strip("()").strip().upper() == "NULL":
        return None
    return expression


def _has_db_default(field: Any) -> bool:
    """The field declares ``db_default`` (Django 5.0+; never on Django 4.2)."""
    from django.db.models import NOT_PROVIDED

    return getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED


class NotNullWithoutDbDefault(Rule):
    """A NOT NULL column without a database default makes the previous release's INSERTs fail.

    **What it flags.** ``AddField`` of a NOT NULL column that leaves no
    ``DEFAULT`` in the database. Django adds the column with a one-off
    ``DEFAULT`` to fill the existing rows and drops it in the same
    migration::

        migrations.AddField("user", "login_count", models.IntegerField(default=0))
        # ALTER TABLE "accounts_user" ADD COLUMN "login_count" integer DEFAULT 0 NOT NULL
        # ALTER TABLE "accounts_user" ALTER COLUMN "login_count" DROP DEFAULT

    During a rolling deploy the previous release keeps running for a while;
    its model does not know the column, its INSERTs do not name it, and
    PostgreSQL rejects them with a not-null violation. ``RunSQL`` that adds a
    NOT NULL column with no DEFAULT is flagged the same way. Not flagged: a
    nullable field, a field with ``db_default`` (Django 5.0+), SQL that leaves
    a DEFAULT in place (``SeparateDatabaseAndState`` with ``RunSQL ... ADD
    COLUMN ... DEFAULT 0 NOT NULL``), primary keys, identity, serial and
    generated columns, and many-to-many fields (no column). Tables that the
    same migration created before the operation are left out (no release knows
    them yet); tables created by an earlier migration of the same change too.

    **Lock.** ACCESS EXCLUSIVE on the table, brief (a constant default is
    catalog-only on PostgreSQL 11+). The harm comes after the migration: every
    INSERT of the previous release into the table fails until the last old
    server is gone.

    **Safe alternative.** Keep a default in the database. On Django 5.0+ use
    ``db_default``; on any version, write the column with ``RunSQL`` and keep
    Django's state in step with ``SeparateDatabaseAndState``::

        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField("user", "login_count", models.IntegerField(default=0)),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE accounts_user "
                    "ADD COLUMN login_count integer DEFAULT 0 NOT NULL",
                    "ALTER TABLE accounts_user DROP COLUMN login_count",
                ),
            ],
        )

    Or expand and contract: add the column ``null=True`` in this release and
    make it NOT NULL in a later one, after every server writes it.

    **References.**
    https://docs.djangoproject.com/en/stable/ref/models/fields/#db-default,
    https://docs.djangoproject.com/en/stable/ref/migration-operations/#separatedatabaseandstate,
    https://www.postgresql.org/docs/current/sql-altertable.html (``ADD COLUMN``,
    ``SET DEFAULT``).
    """

    id = "not-null-without-db-default"
    severity = Severity.ERROR
    category = Category.COMPATIBILITY
    only_existing_tables = True
    plannable = True

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterator[Finding]:
        added: dict[tuple[str, str], _Added] = {}
        for op, stmt, facts in migration_statements(migration):
            if facts.kind != sqlfacts.ALTER_TABLE or not facts.table:
                continue
            for action in facts.actions:
                if not action.column:
                    continue
                key = (facts.table, action.column)
                if action.kind == sqlfacts.ADD_COLUMN:
                    if (
                        action.not_null
                        and not action.identity
                        and not action.generated_stored
                        and not action.inline_primary_key
                    ):
                        added[key] = _Added(op, stmt, _default(action.default))
                    continue
                entry = added.get(key)
                if entry is None:
                    continue
                if action.kind == sqlfacts.SET_DEFAULT:
                    entry.default = _default(action.default)
                elif action.kind == sqlfacts.DROP_DEFAULT:
                    entry.dropped_default = entry.default is not None or entry.dropped_default
                    entry.default = None
                elif action.kind == sqlfacts.DROP_NOT_NULL:
                    entry.not_null = False
                elif action.kind == sqlfacts.SET_NOT_NULL:
                    entry.not_null = True
                elif action.kind == sqlfacts.DROP_COLUMN:
                    del added[key]
        for (table, column), entry in added.items():
            if not entry.not_null or entry.default is not None:
                continue
            if made_earlier(migration, entry.op, table):
                continue  # a table this migration creates: no release knows it yet
            field = entry.op.new_field if entry.op.column == column else None
            if field is not None and (
                getattr(field, "primary_key", False) or _has_db_default(field)
            ):
                continue
            yield self._finding(entry, table, column, ctx)

    def _finding(self, entry: _Added, table: str, column: str, ctx: RuleContext) -> Finding:
        op = entry.op
        how = (
            "with a one-off DEFAULT that the same migration drops again"
            if entry.dropped_default
            else "with no DEFAULT"
        )
        return ctx.finding(
            self,
            op,
            f"{op.kind} adds {table}.{column} NOT NULL {how}: during the deploy the previous "
            f"release still runs, its INSERTs into {table} do not name {column}, and "
            "PostgreSQL rejects every one of them with a not-null violation until the last "
            "old server is gone.",
            f"Keep a database default: db_default=... on the field (Django 5.0+), or "
            f"SeparateDatabaseAndState with the AddField in state_operations and RunSQL "
            f"'ALTER TABLE {table} ADD COLUMN {column} ... DEFAULT ... NOT NULL' in "
            "database_operations; or add it null=True now and make it NOT NULL in a later "
            "release, once every server writes it.",
            table=table,
            sql=[entry.stmt.sql],
        )
