"""SET NOT NULL on an existing table."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import ident, migration_statements, without_strings
from .base import Prediction, Rule

if TYPE_CHECKING:
    from ..collect import MigrationRecord
    from ..sqlfacts import AlterAction, SqlStatement
    from .base import RuleContext

_NAME = r'("(?:[^"]|"")+"|[A-Za-z_][\w$]*)'


def _proved_column(text: str, action: AlterAction) -> str | None:
    """The column a ``CHECK (col IS NOT NULL)`` of ``action`` proves non-null, if any."""
    if action.constraint_type == sqlfacts.NOT_NULL:  # PG18: ADD CONSTRAINT n NOT NULL col
        return action.column
    if action.constraint_type != sqlfacts.CHECK:
        return None
    lead = rf"CONSTRAINT\s+{ident(action.constraint)}\s+" if action.constraint else r"ADD\s+"
    match = re.search(
        lead
        + r"CHECK\s*\(\s*\(?\s*(?:[\w\"]+\s*\.\s*)?"
        + _NAME
        + r"\s+IS\s+NOT\s+NULL\s*\)?\s*\)",
        without_strings(text),
        re.IGNORECASE,
    )
    if match is None:
        return None
    name = match.group(1)
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


class _Proofs:
    """Constraints seen so far in the migration that prove a column holds no NULL."""

    def __init__(self) -> None:
        #: (table, column) -> constraint names (None: unnamed) that are valid.
        self.valid: dict[tuple[str, str], set[str | None]] = {}
        #: (table, constraint) -> column, added NOT VALID and not validated yet.
        self.pending: dict[tuple[str, str], str] = {}
        #: (table, constraint) validated here but defined in another migration.
        self.validated_elsewhere: set[tuple[str, str]] = set()

    def see(self, facts: SqlStatement, action: AlterAction) -> None:
        table = facts.table or ""
        name = action.constraint
        if action.kind == sqlfacts.ADD_CONSTRAINT:
            column = _proved_column(facts.text, action)
            if column is None:
                return
            if action.not_valid and name:
                self.pending[(table, name)] = column
            elif not action.not_valid:
                self.valid.setdefault((table, column), set()).add(name)
        elif action.kind == sqlfacts.VALIDATE_CONSTRAINT and name:
            column = self.pending.pop((table, name), None)
            if column is not None:
                self.valid.setdefault((table, column), set()).add(name)
            elif not any(name in names for (t, _), names in self.valid.items() if t == table):
                self.validated_elsewhere.add((table, name))
        elif action.kind == sqlfacts.DROP_CONSTRAINT and name:
            self.pending.pop((table, name), None)
            self.validated_elsewhere.discard((table, name))
            for (t, _), names in self.valid.items():
                if t == table:
                    names.discard(name)

    def proves(self, table: str, column: str) -> bool:
        if self.valid.get((table, column)):
            return True
        # A constraint defined in an earlier migration and validated here: trust it when its
        # name mentions the column (blog_post_summary_not_null); the trace still reports a
        # scan if PostgreSQL did one.
        return any(
            t == table and f"_{column.lower()}_" in f"_{name.lower()}_"
            for t, name in self.validated_elsewhere
        )


class SetNotNull(Rule):
    """SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock.

    **What it flags.** ``ALTER TABLE ... ALTER COLUMN ... SET NOT NULL`` on a
    table that existed before the change: an ``AlterField`` from ``null=True``
    to ``null=False`` (Django also runs an ``UPDATE`` that fills the NULLs when
    the field has a default) or the same SQL in ``RunSQL``::

        migrations.AlterField("post", "word_count", models.IntegerField())
        # ALTER TABLE "blog_post" ALTER COLUMN "word_count" SET NOT NULL

    The column's age does not matter: a column added earlier in the change (or
    in the same statement) is scanned just the same. Not flagged on PostgreSQL
    12+ when, earlier in the same migration, a ``CHECK (col IS NOT NULL)``
    constraint was added without ``NOT VALID`` or validated with ``VALIDATE
    CONSTRAINT``: PostgreSQL then takes the constraint as proof and skips the
    scan. A ``VALIDATE CONSTRAINT`` of a constraint added by an earlier
    migration counts when the constraint's name contains the column's name
    between underscores (``blog_post_summary_not_null`` for ``summary``).

    **Lock.** ACCESS EXCLUSIVE on the table, which blocks reads and writes,
    while PostgreSQL reads every row to prove that no NULL is left: for a time
    proportional to the table's size.

    **Safe alternative.** Prove the column first with a ``CHECK`` constraint
    that is added ``NOT VALID`` (brief lock, no scan), validate it (scan under
    SHARE UPDATE EXCLUSIVE, which lets reads and writes continue), then set
    NOT NULL (no scan on PostgreSQL 12+) and drop the CHECK. Django's state
    changes through ``SeparateDatabaseAndState``::

        # 0009: no scan
        migrations.RunSQL(
            "ALTER TABLE blog_post ADD CONSTRAINT blog_post_word_count_nn "
            "CHECK (word_count IS NOT NULL) NOT VALID",
            "ALTER TABLE blog_post DROP CONSTRAINT blog_post_word_count_nn",
        )
        # 0010: scan without blocking, then catalog-only changes
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField("post", "word_count", models.IntegerField()),
            ],
            database_operations=[
                migrations.RunSQL(
                    [
                        "ALTER TABLE blog_post VALIDATE CONSTRAINT blog_post_word_count_nn",
                        "ALTER TABLE blog_post ALTER COLUMN word_count SET NOT NULL",
                        "ALTER TABLE blog_post DROP CONSTRAINT blog_post_word_count_nn",
                    ],
                    "ALTER TABLE blog_post ALTER COLUMN word_count DROP NOT NULL",
                ),
            ],
        )

    On PostgreSQL 18 the NOT NULL constraint itself can be added ``NOT VALID``
    (``ALTER TABLE blog_post ADD CONSTRAINT blog_post_word_count_nn NOT NULL
    word_count NOT VALID``) and validated later, with no CHECK in between.

    **References.**
    https://www.postgresql.org/docs/current/sql-altertable.html (``SET/DROP NOT
    NULL``: the table is scanned unless a valid CHECK constraint proves that no
    NULL can exist),
    https://www.postgresql.org/docs/current/explicit-locking.html (table-level
    lock modes).
    """

    id = "set-not-null"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", scan=True)
    plannable = True

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterator[Finding]:
        proofs = _Proofs()
        seen: set[tuple[int, str, str]] = set()
        for op, stmt, facts in migration_statements(migration):
            if facts.kind != sqlfacts.ALTER_TABLE or not facts.table:
                continue
            table = facts.table
            for action in facts.actions:
                if action.kind != sqlfacts.SET_NOT_NULL or not action.column:
                    proofs.see(facts, action)
                    continue
                column = action.column
                proved = proofs.proves(table, column) or (table, column) in migration.valid_not_null
                if ctx.pg.set_not_null_skips_scan_with_valid_check and proved:
                    continue
                if (op.index, table, column) in seen:
                    continue
                seen.add((op.index, table, column))
                yield ctx.finding(
                    self,
                    op,
                    f"{op.kind} sets {table}.{column} NOT NULL: PostgreSQL takes an ACCESS "
                    f"EXCLUSIVE lock on {table} and reads every row to check for NULLs while "
                    f"holding it, so on a big table every read and write of {table} waits "
                    "for the whole scan.",
                    self._fix(table, column, ctx),
                    table=table,
                    sql=[stmt.sql],
                    lock="AccessExclusiveLock",
                )

    @staticmethod
    def _fix(table: str, column: str, ctx: RuleContext) -> str:
        if not ctx.pg.set_not_null_skips_scan_with_valid_check:
            return (
                f"Before PostgreSQL 12 the scan cannot be skipped: keep the column nullable "
                f"and enforce it with CHECK ({column} IS NOT NULL) added NOT VALID (RunSQL) "
                "and validated in a later migration, with the AlterField in "
                "SeparateDatabaseAndState.state_operations."
            )
        fix = (
            f"Add CHECK ({column} IS NOT NULL) NOT VALID on {table} with RunSQL, then in a "
            "later migration VALIDATE CONSTRAINT it, SET NOT NULL (no scan on PostgreSQL 12+) "
            "and drop the CHECK, with the AlterField in SeparateDatabaseAndState.state_operations."
        )
        if ctx.pg.has_not_null_not_valid:
            fix += (
                f" On PostgreSQL 18: ALTER TABLE {table} ADD CONSTRAINT <name> NOT NULL "
                f"{column} NOT VALID, then VALIDATE CONSTRAINT <name> in a later migration."
            )
        return fix
