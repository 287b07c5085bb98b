"""A CONCURRENTLY index operation in an atomic migration: PostgreSQL refuses it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from .base import Rule, RuleContext

if TYPE_CHECKING:
    from ..collect import OperationRecord

_CONCURRENT_KINDS = frozenset({sqlfacts.CREATE_INDEX, sqlfacts.DROP_INDEX, sqlfacts.REINDEX})
_CONCURRENT_OPERATIONS = frozenset({"AddIndexConcurrently", "RemoveIndexConcurrently"})


def _runsql_texts(operation: Any) -> Iterator[str] | None:
    """The forward SQL of RunSQL operations (in SeparateDatabaseAndState too), or None."""
    from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

    if isinstance(operation, RunSQL):
        return _sql_items(operation.sql)
    if isinstance(operation, SeparateDatabaseAndState):
        nested = [_runsql_texts(inner) for inner in operation.database_operations]
        if any(texts is not None for texts in nested):
            return (text for texts in nested if texts is not None for text in texts)
    return None


def _sql_items(sql: Any) -> Iterator[str]:
    """RunSQL.sql: a string, or a list of strings and (sql, params) pairs."""
    if isinstance(sql, str):
        yield sql
    elif isinstance(sql, (list, tuple)):
        for item in sql:
            if isinstance(item, str):
                yield item
            elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
                yield item[0]


def _is_concurrent_operation(operation: Any) -> bool:
    """AddIndexConcurrently, RemoveIndexConcurrently, or a subclass (django.contrib.postgres)."""
    return any(
        cls.__name__ in _CONCURRENT_OPERATIONS or cls.__name__ == "NotInTransactionMixin"
        for cls in type(operation).__mro__
    )


def concurrent_statements(op: OperationRecord) -> list[sqlfacts.SqlStatement]:
    """CREATE/DROP INDEX CONCURRENTLY and REINDEX ... CONCURRENTLY the operation runs.

    RunSQL is read from its source, so statements after the one PostgreSQL
    refused count too; other operations from the SQL they emitted.
    """
    texts = _runsql_texts(op.operation)
    if texts is None:
        found = [stmt.facts for stmt in op.statements]
    else:
        found = [facts for text in texts for facts in sqlfacts.parse(text)]
    return [f for f in found if f.kind in _CONCURRENT_KINDS and f.concurrently]


def _describe(facts: sqlfacts.SqlStatement) -> str:
    if facts.kind == sqlfacts.REINDEX:
        return "REINDEX ... CONCURRENTLY"
    verb = (
        "CREATE UNIQUE INDEX"
        if facts.unique
        else ("CREATE INDEX" if facts.kind == sqlfacts.CREATE_INDEX else "DROP INDEX")
    )
    return f"{verb} CONCURRENTLY"


class ConcurrentlyInAtomicMigration(Rule):
    """A CONCURRENTLY index operation sits in an atomic migration, which PostgreSQL refuses.

    **What it flags.** In a migration without ``atomic = False`` (Django runs
    every migration in a transaction by default): ``AddIndexConcurrently`` or
    ``RemoveIndexConcurrently``, or ``RunSQL`` with ``CREATE INDEX
    CONCURRENTLY``, ``DROP INDEX CONCURRENTLY`` or ``REINDEX ... CONCURRENTLY``::

        class Migration(migrations.Migration):
            operations = [
                migrations.RunSQL('CREATE INDEX CONCURRENTLY "order_created_idx" '
                                  'ON "shop_order" ("created")'),
            ]

    The rule reads the operation and its SQL, so it reports the mistake even
    where the migration is not applied; the audit, which applies it, reports the
    failure as ``migration-failed`` as well.

    **Why it matters.** PostgreSQL refuses these statements inside a transaction
    block (``CREATE INDEX CONCURRENTLY cannot run inside a transaction block``),
    and Django refuses the two operations in an atomic migration
    (``NotSupportedError``): ``manage.py migrate`` fails and the deploy stops.

    **Safe alternative.** Set ``atomic = False`` on the migration and keep the
    concurrent operation alone in it; move everything else to migrations of
    their own (without a transaction, a failure in the middle leaves the
    operations before it applied, and a failed concurrent build leaves an
    INVALID index to drop before retrying)::

        class Migration(migrations.Migration):
            atomic = False

            operations = [
                AddIndexConcurrently(
                    "order", models.Index(fields=["created"], name="order_created_idx")
                ),
            ]

    **References.** PostgreSQL, CREATE INDEX (``CONCURRENTLY``: "cannot be
    executed inside a transaction block"):
    https://www.postgresql.org/docs/current/sql-createindex.html ; Django,
    "Non-atomic migrations":
    https://docs.djangoproject.com/en/stable/howto/writing-migrations/#non-atomic-migrations
    """

    id = "concurrently-in-atomic-migration"
    severity = Severity.ERROR
    category = Category.CORRECTNESS
    only_existing_tables = False
    predicts = None
    plannable = False

    def check_operation(self, op: OperationRecord, ctx: RuleContext) -> Iterable[Finding]:
        if not ctx.migration.atomic:
            return
        found = concurrent_statements(op)
        if _is_concurrent_operation(op.operation):
            what = (
                f"{op.kind} runs {'DROP' if 'Remove' in op.kind else 'CREATE'} INDEX CONCURRENTLY"
            )
            refused = "Django refuses it in an atomic migration (NotSupportedError)"
        elif found:
            kinds = ", ".join(dict.fromkeys(_describe(f) for f in found))
            what = f"{op.kind} runs {kinds}"
            refused = (
                'PostgreSQL refuses it inside a transaction block ("cannot run inside a '
                'transaction block")'
            )
        else:
            return
        table = next((f.table for f in found if f.table), None) or op.table
        message = (
            f"{what}, but this migration is atomic (the default: one transaction): {refused}, "
            "so `manage.py migrate` fails here and the deploy stops."
        )
        yield ctx.finding(
            self,
            op,
            message,
            "Set atomic = False on the Migration and keep this concurrent operation alone in it; "
            "move the other operations to their own migrations.",
            table=table,
            sql=tuple(f.text for f in found),
        )
