"""ALTER COLUMN TYPE that rewrites an existing table."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import sqlfacts
from ..findings import Category, Finding, Severity
from ._schema_sql import column_type_in_state, migration_statements
from .base import Prediction, Rule

if TYPE_CHECKING:
    from ..collect import MigrationRecord, OperationRecord
    from ..sqlfacts import AlterAction
    from .base import RuleContext


@dataclasses.dataclass(frozen=True)
class ColumnType:
    """A column type in a canonical spelling: base name, type modifiers, array depth."""

    base: str
    mods: tuple[int, ...] = ()
    array: int = 0

    def __str__(self) -> str:
        mods = f"({','.join(map(str, self.mods))})" if self.mods else ""
        return f"{self.base}{mods}{'[]' * self.array}"


_ALIASES = {
    "character varying": "varchar",
    "char varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "int": "int4",
    "integer": "int4",
    "bigint": "int8",
    "smallint": "int2",
    "decimal": "numeric",
    "bit varying": "varbit",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
    "double precision": "float8",
    "float": "float8",
    "real": "float4",
    "boolean": "bool",
}
_MODS = re.compile(r"\(([^()]*)\)")


def parse_type(text: str | None) -> ColumnType | None:
    """``text`` (a type as written) in canonical form; None when it cannot be read."""
    if not text:
        return None
    s = " ".join(text.lower().replace('"', "").split())
    array = 0
    while True:
        if s.endswith("[]"):
            s, array = s[:-2].rstrip(), array + 1
        elif s.endswith(" array"):
            s, array = s[: -len(" array")].rstrip(), array + 1
        else:
            break
    s = re.sub(r"\[\d*\]$", "", s)
    if s.startswith("pg_catalog."):
        s = s[len("pg_catalog.") :]
    mods: tuple[int, ...] = ()
    match = _MODS.search(s)
    if match:
        try:
            mods = tuple(int(m) for m in match.group(1).replace(" ", "").split(",") if m)
        except ValueError:
            return None
        s = " ".join((s[: match.start()] + " " + s[match.end() :]).split())
    if not s or "(" in s:
        return None
    return ColumnType(_ALIASES.get(s, s), mods, array)


#: Old -> new changes that PostgreSQL makes without a rewrite or a check of the rows
#: (binary-coercible, or a type modifier that only widens), checked on PostgreSQL 15:
#:
#: ==========================  =================================================
#: varchar(n)                  varchar(m), m >= n; varchar; text
#: varchar, text               varchar, text
#: numeric(p, s)               numeric(q, s), q >= p; numeric
#: varbit(n), bit(n)           varbit(m), m >= n; varbit
#: timestamp(p), timestamptz,  the same type with precision q >= p, or without
#: time, timetz (p)            a precision
#: cidr                        inet
#: xml                         text
#: ==========================  =================================================
#:
#: timestamp <-> timestamptz needs no rewrite on PG12+ only when the session's
#: TimeZone is UTC: reported as a warning. Everything else (int -> bigint, a
#: shorter varchar, text -> varchar(n), a new numeric scale, arrays, char(n), json
#: -> jsonb...) rewrites the table and rebuilds its indexes.
_WIDENING = {"varchar", "numeric", "varbit", "timestamp", "timestamptz", "time", "timetz"}
_PLAIN_COERCIBLE = {("cidr", "inet"), ("xml", "text")}

SAFE = "safe"
REWRITE = "rewrite"
TIMEZONE = "timezone"


def change_kind(old: ColumnType, new: ColumnType) -> str:
    """SAFE (catalog only), REWRITE, or TIMEZONE (no rewrite only with TimeZone UTC)."""
    if old == new:
        return SAFE
    if old.array or new.array:
        return REWRITE
    if {old.base, new.base} == {"timestamp", "timestamptz"}:
        return TIMEZONE
    if old.base in ("varchar", "text") and new.base == "text":
        return SAFE
    if old.base == "text" and new.base == "varchar" and not new.mods:
        return SAFE
    if (old.base, new.base) in _PLAIN_COERCIBLE:
        return SAFE
    if old.base == "bit" and new.base == "varbit":
        old = ColumnType("varbit", old.mods or (1,))
    if old.base == new.base and old.base in _WIDENING:
        if not new.mods:
            return SAFE
        if not old.mods:
            return REWRITE
        if old.base == "numeric":
            old_scale = old.mods[1] if len(old.mods) > 1 else 0
            new_scale = new.mods[1] if len(new.mods) > 1 else 0
            return SAFE if new_scale == old_scale and new.mods[0] >= old.mods[0] else REWRITE
        return SAFE if new.mods[0] >= old.mods[0] else REWRITE
    return REWRITE


def _trivial_using(using: str | None, column: str, new: ColumnType) -> bool:
    """No USING, or one that only casts the column to the new type."""
    if using is None:
        return True
    match = re.fullmatch(
        rf'\s*\(?\s*(?:"{re.escape(column)}"|{re.escape(column)})\s*\)?\s*(?:::\s*(.+?))?\s*',
        using,
        re.IGNORECASE,
    )
    if match is None:
        return False
    return match.group(1) is None or parse_type(match.group(1)) == new


class AlterColumnTypeRewrite(Rule):
    """Changing a column's type rewrites the table and its indexes under ACCESS EXCLUSIVE.

    **What it flags.** ``ALTER TABLE ... ALTER COLUMN ... TYPE`` on a table that
    existed before the change, when the old type is not binary-coercible to
    the new one: ``AlterField`` from ``IntegerField`` to ``BigIntegerField``, a
    shorter ``max_length``, ``TextField`` to ``CharField``, a new
    ``decimal_places``, or the same in ``RunSQL``::

        migrations.AlterField("order", "payment_reference", models.BigIntegerField())
        # ALTER TABLE "shop_order" ALTER COLUMN "payment_reference" TYPE bigint
        #     USING "payment_reference"::bigint

    Not flagged when PostgreSQL only updates the catalog: a longer
    ``varchar``, ``varchar`` to ``text``, more ``numeric`` precision with the
    same scale, a wider ``varbit`` or time precision, ``cidr`` to ``inet``
    (the module keeps the table of these changes). A ``USING`` expression that
    does more than cast the column is flagged whatever the types. When
    ``RunSQL`` changes a column whose old type neither Django's state nor the
    migration tells, the finding is a warning that asks to verify the change;
    ``timestamp`` ↔ ``timestamptz`` is a warning too (no rewrite on
    PostgreSQL 12+ only when the session's ``TimeZone`` is UTC).

    **Lock.** ACCESS EXCLUSIVE on the table, which blocks reads and writes,
    while PostgreSQL writes a new copy of every row and rebuilds every index
    of the table: for a time proportional to the table's size (and it needs
    that much free disk).

    **Safe alternative.** Expand and contract instead of converting in place:
    add a new column of the new type, write both columns from the
    application, backfill in batches, switch reads, and drop the old column
    in a later release::

        # release 1: the new column, filled by the application on every write
        migrations.AddField("order", "payment_reference_big",
                            models.BigIntegerField(null=True))
        # release 1, atomic = False: backfill in batches, one transaction each
        migrations.RunPython(backfill_in_batches, migrations.RunPython.noop)
        # release 2: read the new column; release 3: drop the old one

    **References.**
    https://www.postgresql.org/docs/current/sql-altertable.html (``SET DATA
    TYPE`` and Notes: a type change rewrites the table unless the old type is
    binary coercible to the new one),
    https://www.postgresql.org/docs/current/sql-createcast.html (binary
    coercible types).
    """

    id = "alter-column-type-rewrite"
    severity = Severity.ERROR
    category = Category.LOCKING
    only_existing_tables = True
    predicts = Prediction(lock="AccessExclusiveLock", rewrite=True)
    plannable = True

    def check_migration(self, migration: MigrationRecord, ctx: RuleContext) -> Iterator[Finding]:
        #: Column types the migration's own SQL set (ADD COLUMN, ALTER TYPE), latest first.
        known: dict[tuple[str, str], str] = {}
        for op, stmt, facts in migration_statements(migration):
            if facts.kind != sqlfacts.ALTER_TABLE or not facts.table:
                continue
            table = facts.table
            for action in facts.actions:
                if not action.column or not action.data_type:
                    continue
                key = (table, action.column)
                if action.kind == sqlfacts.ADD_COLUMN:
                    known[key] = action.data_type
                    continue
                if action.kind != sqlfacts.ALTER_TYPE:
                    continue
                old_text = known.get(key) or self._old_type(op, table, action.column)
                known[key] = action.data_type
                finding = self._judge(op, table, action, old_text, ctx)
                if finding is not None:
                    yield finding.replace(sql=(stmt.sql,))

    @staticmethod
    def _old_type(op: OperationRecord, table: str, column: str) -> str | None:
        if (
            op.old_type
            and table in (op.table, op.old_table)
            and column in (op.column, op.old_column)
        ):
            return str(op.old_type)
        return column_type_in_state(op.from_state, table, column)

    def _judge(
        self,
        op: OperationRecord,
        table: str,
        action: AlterAction,
        old_text: str | None,
        ctx: RuleContext,
    ) -> Finding | None:
        column = action.column or ""
        new = parse_type(action.data_type)
        old = parse_type(old_text)
        where = f"{table}.{column}"
        lock = "AccessExclusiveLock"
        fix = (
            f"Expand and contract: add a new {action.data_type} column (AddField, null=True), "
            "write both columns from the application, backfill it in batches from an "
            "atomic = False migration, switch reads to it, and drop the old column in a later "
            "release."
        )
        if new is not None and not _trivial_using(action.using, column, new):
            return ctx.finding(
                self,
                op,
                f"{op.kind} changes the type of {where} to {action.data_type} USING "
                f"{action.using}: PostgreSQL computes the expression for every row, rewriting "
                f"{table} and rebuilding its indexes under an ACCESS EXCLUSIVE lock that blocks "
                "reads and writes until the rewrite is done.",
                fix,
                table=table,
                lock=lock,
            )
        if old is None or new is None:
            return ctx.finding(
                self,
                op,
                f"{op.kind} changes the type of {where} to {action.data_type}, and its old type "
                "is unknown here: verify that the change is binary-coercible (a longer varchar, "
                "varchar to text...). Any other type change rewrites "
                f"{table} and rebuilds its indexes under an ACCESS EXCLUSIVE lock that blocks "
                "reads and writes until the rewrite is done.",
                fix,
                table=table,
                lock=lock,
                severity=Severity.WARNING,
            )
        kind = change_kind(old, new)
        if kind == SAFE:
            return None
        change = f"{op.kind} changes {where} from {old_text} to {action.data_type}"
        if kind == TIMEZONE and ctx.pg.timestamp_tz_change_skips_rewrite_in_utc:
            return ctx.finding(
                self,
                op,
                f"{change}: PostgreSQL skips the rewrite only when the migration's session "
                f"TimeZone is UTC; with any other time zone it rewrites {table} and its "
                "indexes under an ACCESS EXCLUSIVE lock that blocks reads and writes. "
                "Verify the session time zone (Django uses UTC when USE_TZ = True).",
                fix,
                table=table,
                lock=lock,
                severity=Severity.WARNING,
            )
        return ctx.finding(
            self,
            op,
            f"{change}, which is not binary-coercible: PostgreSQL rewrites every row of "
            f"{table} and rebuilds all its indexes under an ACCESS EXCLUSIVE lock, so reads "
            f"and writes of {table} wait until the rewrite is done.",
            fix,
            table=table,
            lock=lock,
        )
