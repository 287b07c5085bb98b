"""Fill the tables a change touches with generated rows before tracing it (``--seed-rows``).

On empty tables every rewrite, scan and index build takes a millisecond, and
a migration that would fail on a table with rows (a NOT NULL column without a
default, a constraint the data breaks) passes. With ``--seed-rows N`` the
tables that existed before the change and that its operations name get N
generated rows each, so the trace times real work.

Which tables: the ``db_table`` of every model an operation names
(``model_name``, ``name``, ``old_name``, and the model a relation field points
to), looked up in the project state before the change; the tables named in
``RunSQL`` text (through :mod:`migration_guard.sqlfacts`); then, recursively,
the tables their NOT NULL foreign keys reference, which need rows first and
are seeded first.

How: one ``INSERT ... SELECT ... FROM generate_series(1, N)`` per table, each
column's value made from the catalog (its type, NOT NULL, default, foreign
key, uniqueness). Columns with a default (serial, identity, database
defaults) get the default; nullable columns of types without a generator stay
NULL. Each table is inserted under its own savepoint: a table that cannot be
seeded (a CHECK the generated values break, a NOT NULL column of an unknown
type...) is skipped with a note giving PostgreSQL's error, never a crash.
Seeded tables are vacuumed and analyzed afterwards, as a long-lived
production table would be.

When: once, before the change's first migration, for every table the change
touches. When migrations are judged each on its own (``--all``), before each
migration, for the tables it touches that exist by then and were not seeded
yet in this run: every table is seeded at most once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql

from .. import sqlfacts
from ..postgres.base import ConnectionInfo

#: At most this many parent keys are sampled when parent keys are not contiguous integers.
MAX_PARENT_KEYS = 100_000
#: Non-unique decimal values stay below this (prices and amounts of a realistic size).
AMOUNT_TOP = 1000

_INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid"})
_FLOAT_TYPES = frozenset({"float4", "float8", "money"})
_STRING_TYPES = frozenset({"text", "varchar", "bpchar", "citext", "name"})
_TIME_TYPES = frozenset({"timestamp", "timestamptz", "time", "timetz"})
_JSON_TYPES = frozenset({"json", "jsonb"})

COLUMNS_QUERY = """
SELECT a.attnum, a.attname,
       coalesce(bt.typname, t.typname) AS typname,
       coalesce(bt.typcategory, t.typcategory) AS typcategory,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod,
       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS notnull,
       a.atthasdef OR (t.typtype = 'd' AND t.typdefaultbin IS NOT NULL) AS hasdefault,
       a.attidentity <> '' AS identity,
       a.attgenerated <> '' AS generated
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

FOREIGN_KEYS_QUERY = """
SELECT c.conkey::int2[], c.confrelid::bigint, c.confkey::int2[]
FROM pg_constraint c
WHERE c.conrelid = %s AND c.contype = 'f'
"""

UNIQUE_QUERY = """
SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = %s AND i.indisunique
"""

RELATION_QUERY = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(quote_ident(%s))
"""

RELATION_BY_OID_QUERY = """
SELECT c.oid::bigint, n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %s
"""


# --- which tables ----------------------------------------------------------------------


def touched_tables(
    migrations: Iterable[Any], state: Any, *, state_operations: bool = False
) -> list[str]:
    """Tables the operations of ``migrations`` name, as the project ``state`` maps models.

    Models the state does not know (created by the change itself) are left out;
    so are RunPython functions, whose queries cannot be known in advance. With
    ``state_operations``, the models that ``SeparateDatabaseAndState`` changes in
    Django's state only count too (their tables are still queried).
    """
    out: dict[str, None] = {}
    for migration in migrations:
        for operation in _flatten(migration.operations, state_operations):
            for table in _operation_tables(operation, migration.app_label, state):
                out.setdefault(table, None)
    return list(out)


def _flatten(operations: Iterable[Any], state_operations: bool = False) -> Iterator[Any]:
    from django.db.migrations.operations.special import SeparateDatabaseAndState

    for operation in operations:
        if isinstance(operation, SeparateDatabaseAndState):
            yield from _flatten(operation.database_operations, state_operations)
            if state_operations:
                yield from _flatten(operation.state_operations, state_operations)
        else:
            yield operation


def _operation_tables(operation: Any, app_label: str, state: Any) -> Iterator[str]:
    from django.db.migrations.operations.special import RunSQL

    if isinstance(operation, RunSQL):
        yield from sql_tables(operation.sql)
        return
    model_name = getattr(operation, "model_name", None)
    names = (
        [model_name]
        if isinstance(model_name, str)
        else [getattr(operation, "name", None), getattr(operation, "old_name", None)]
    )
    for name in names:
        if isinstance(name, str):
            table = _db_table(state, app_label, name)
            if table:
                yield table
    field = getattr(operation, "field", None)
    remote = getattr(field, "remote_field", None)
    if remote is not None and isinstance(model_name, str):
        target = _related(remote.model, app_label, model_name)
        if target is not None:
            table = _db_table(state, *target)
            if table:
                yield table


def _related(model: Any, app_label: str, model_name: str) -> tuple[str, str] | None:
    if isinstance(model, str):
        if model == "self":
            return app_label, model_name
        if "." in model:
            app, _, name = model.partition(".")
            return app, name
        return app_label, model
    meta = getattr(model, "_meta", None)
    if meta is None:
        return None
    return meta.app_label, meta.model_name


def _db_table(state: Any, app_label: str, model_name: str) -> str | None:
    try:
        model = state.apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None
    return str(model._meta.concrete_model._meta.db_table)


def sql_tables(value: Any) -> Iterator[str]:
    """Tables named in RunSQL's ``sql`` (a string, or a list of strings or (sql, params))."""
    if value is None:
        return
    items = [value] if isinstance(value, str) else list(value)
    seen: dict[str, None] = {}
    for item in items:
        text = item[0] if isinstance(item, (list, tuple)) and item else item
        if not isinstance(text, str):
            continue
        for stmt in sqlfacts.parse(text):
            names = [stmt.table, *stmt.tables]
            for action in stmt.actions:
                names += [action.references, action.inline_references]
            seen.update((name, None) for name in names if name)
    yield from seen


# --- what the catalog says -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Column:
    number: int
    name: str
    typname: str
    category: str
    typmod: int
    notnull: bool
    default: bool

    @property
    def length(self) -> int | None:
        """The n of varchar(n) / char(n)."""
        if self.typname in ("varchar", "bpchar") and self.typmod >= 4:
            return self.typmod - 4
        return None


@dataclasses.dataclass(frozen=True)
class ForeignKey:
    column: int
    parent: int  # oid
    parent_column: int


@dataclasses.dataclass
class Table:
    oid: int
    schema: str
    name: str
    columns: list[Column]
    #: Single-column NOT NULL foreign keys (what needs parent rows).
    foreign_keys: list[ForeignKey]
    #: Column numbers that are unique on their own or part of a unique index.
    unique: set[int]
    #: Column numbers of every foreign key (nullable ones are left NULL).
    fk_columns: set[int] = dataclasses.field(default_factory=set)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    def column(self, number: int) -> Column | None:
        return next((c for c in self.columns if c.number == number), None)


def _relation(conn: psycopg.Connection[Any], query: str, key: Any) -> tuple[int, str, str] | None:
    row = conn.execute(query, (key,)).fetchone()
    if row is None or row[3] not in ("r", "p"):
        return None
    return int(row[0]), row[1], row[2]


def _read_table(conn: psycopg.Connection[Any], oid: int, schema: str, name: str) -> Table:
    columns = []
    for (
        number,
        attname,
        typname,
        category,
        typmod,
        notnull,
        hasdef,
        identity,
        generated,
    ) in conn.execute(COLUMNS_QUERY, (oid,)).fetchall():
        columns.append(
            Column(
                number=int(number),
                name=attname,
                typname=typname,
                category=category,
                typmod=int(typmod),
                notnull=bool(notnull),
                default=bool(hasdef or identity or generated),
            )
        )
    unique: set[int] = set()
    for (keys,) in conn.execute(UNIQUE_QUERY, (oid,)).fetchall():
        unique.update(int(k) for k in keys if k)
    table = Table(oid, schema, name, columns, [], unique)
    for conkey, parent, confkey in conn.execute(FOREIGN_KEYS_QUERY, (oid,)).fetchall():
        table.fk_columns.update(int(k) for k in conkey)
        if len(conkey) != 1:
            continue  # composite keys: the columns get ordinary values (and may fail)
        column = table.column(int(conkey[0]))
        if column is not None and column.notnull and not column.default:
            table.foreign_keys.append(ForeignKey(int(conkey[0]), int(parent), int(confkey[0])))
    return table


def tables_to_seed(
    conn: psycopg.Connection[Any], names: Iterable[str], done: set[int]
) -> list[Table]:
    """The existing tables among ``names`` and their NOT NULL FK parents, parents first.

    Tables whose oid is in ``done`` (already seeded in this run) are left out.
    """
    found: dict[int, Table] = {}
    pending: list[int] = []
    for name in names:
        rel = _relation(conn, RELATION_QUERY, name)
        if rel is not None and rel[0] not in found and rel[0] not in done:
            found[rel[0]] = _read_table(conn, *rel)
            pending.append(rel[0])
    while pending:
        table = found[pending.pop()]
        for fk in table.foreign_keys:
            if fk.parent in found or fk.parent in done:
                continue
            rel = _relation(conn, RELATION_BY_OID_QUERY, fk.parent)
            if rel is not None:
                found[fk.parent] = _read_table(conn, *rel)
                pending.append(fk.parent)
    return _parents_first(found)


def _parents_first(tables: dict[int, Table]) -> list[Table]:
    order: list[Table] = []
    state: dict[int, int] = {}  # 1: visiting, 2: placed

    def visit(oid: int) -> None:
        if state.get(oid):
            return  # placed, or a cycle: the child may then fail and be skipped
        state[oid] = 1
        for fk in tables[oid].foreign_keys:
            if fk.parent in tables and fk.parent != oid:
                visit(fk.parent)
        state[oid] = 2
        order.append(tables[oid])

    for oid in sorted(tables, key=lambda o: tables[o].name):
        visit(oid)
    return order


# --- generating values -------------------------------------------------------------------

_G = sql.SQL("g")


class _Insert:
    """Builds one table's INSERT ... SELECT ... FROM generate_series."""

    def __init__(self, conn: psycopg.Connection[Any], table: Table, rows: int, salt: str) -> None:
        self.conn = conn
        self.table = table
        self.rows = rows
        self.salt = salt
        self.sources: list[sql.Composable] = []

    def statement(self) -> sql.Composed:
        targets: list[sql.Composable] = []
        values: list[sql.Composable] = []
        fks = {fk.column: fk for fk in self.table.foreign_keys}
        for column in self.table.columns:
            if column.default:
                continue
            fk = fks.get(column.number)
            if fk is not None:
                value: sql.Composable | None = self._parent_key(fk, len(self.sources))
            elif column.number in self.table.fk_columns and not column.notnull:
                continue  # a nullable reference: NULL needs no parent row
            else:
                value = self._value(column)
            if value is None:
                if column.notnull:
                    raise _CannotSeed(
                        f"no generator for NOT NULL column {column.name} of type {column.typname}"
                    )
                continue
            targets.append(sql.Identifier(column.name))
            values.append(value)
        sources = sql.SQL(", ").join(
            [
                sql.SQL("generate_series(1::bigint, {}::bigint) AS s(g)").format(
                    sql.Literal(self.rows)
                ),
                *self.sources,
            ]
        )
        if not targets:  # every column has a default: a zero-column SELECT fills none
            return sql.SQL("INSERT INTO {} SELECT FROM {}").format(self.table.ident, sources)
        return sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {}").format(
            self.table.ident,
            sql.SQL(", ").join(targets),
            sql.SQL(", ").join(values),
            sources,
        )

    def _offset(self, column: Column) -> sql.Composable:
        """``g`` shifted past existing values when the column must be unique."""
        if column.number not in self.table.unique:
            return _G
        if column.typname in _INTEGER_TYPES:
            query = sql.SQL("SELECT coalesce(max({})::bigint, 0) FROM {}").format(
                sql.Identifier(column.name), self.table.ident
            )
        else:
            query = sql.SQL("SELECT count(*) FROM {}").format(self.table.ident)
        row = self.conn.execute(query).fetchone()
        offset = int(row[0]) if row and row[0] is not None else 0
        return sql.SQL("(g + {})").format(sql.Literal(offset)) if offset else _G

    def _value(self, column: Column) -> sql.Composable | None:
        t = column.typname
        if t == "int2":
            if column.number in self.table.unique:
                return self._offset(column)
            return sql.SQL("(g % 32767)")
        if t in _INTEGER_TYPES:
            return self._offset(column)
        if t == "numeric":
            if column.typmod >= 4:
                precision = ((column.typmod - 4) >> 16) & 0xFFFF
                scale = (column.typmod - 4) & 0xFFFF
                digits = precision - scale
                if digits <= 0:
                    return sql.SQL("0")
                if column.number not in self.table.unique:
                    # amounts, prices: modest and positive, as real ones are, so that sums
                    # and products of them (an order's total) fit their own columns
                    top = min(10**digits, AMOUNT_TOP)
                    return sql.SQL("(1 + g % {})").format(sql.Literal(top - 1))
                if digits < 18:
                    return sql.SQL("({} % {})").format(
                        self._offset(column), sql.Literal(10**digits)
                    )
            return self._offset(column)
        if t in _FLOAT_TYPES:
            return self._offset(column)
        if t in _STRING_TYPES or (column.category == "S" and t != "char"):
            text = sql.SQL("('v' || {})").format(self._offset(column))
            if column.length is not None:
                return sql.SQL("left({}, {})").format(text, sql.Literal(column.length))
            return text
        if t == "bool":
            return sql.SQL("(g % 2 = 0)")
        if t == "date":
            return sql.SQL("(current_date - (g % 1000000)::int)")
        if t in _TIME_TYPES:
            return sql.SQL("(now() - g * interval '1 second')")
        if t == "interval":
            return sql.SQL("(g * interval '1 second')")
        if t == "uuid":
            return sql.SQL("md5({} || g::text)::uuid").format(sql.Literal(self.salt))
        if t in _JSON_TYPES:
            return sql.SQL("'{}'")
        if t in ("inet", "cidr"):
            return sql.SQL("('10.0.0.0'::inet + g)")
        if t == "bytea":
            return sql.SQL("decode(md5(g::text), 'hex')")
        if column.category == "A":
            return sql.SQL("'{}'")
        return None

    def _parent_key(self, fk: ForeignKey, index: int) -> sql.Composable:
        """Parent keys spread over the parent's existing rows."""
        parent = self.table if fk.parent == self.table.oid else None
        if parent is None:
            rel = _relation(self.conn, RELATION_BY_OID_QUERY, fk.parent)
            if rel is None:
                raise _CannotSeed("its foreign key points at a relation that is not a table")
            parent = _read_table(self.conn, *rel)
        column = parent.column(fk.parent_column)
        if column is None:
            raise _CannotSeed(f"the key column of {parent.name} is missing")
        key = sql.Identifier(column.name)
        if column.typname in _INTEGER_TYPES:
            row = self.conn.execute(
                sql.SQL("SELECT min({k})::bigint, max({k})::bigint, count({k}) FROM {t}").format(
                    k=key, t=parent.ident
                )
            ).fetchone()
            low, high, count = row if row else (0, 0, 0)
            if not count:
                raise _CannotSeed(f"its parent table {parent.name} has no rows")
            if high - low + 1 == count:
                return sql.SQL("({} + g % {})").format(sql.Literal(low), sql.Literal(count))
        alias = sql.Identifier(f"p{index}")
        self.sources.append(
            sql.SQL(
                "(SELECT array_agg(k) AS keys, count(*) AS n "
                "FROM (SELECT {k} AS k FROM {t} WHERE {k} IS NOT NULL ORDER BY 1 LIMIT {lim}) x) "
                "AS {a}"
            ).format(k=key, t=parent.ident, lim=sql.Literal(MAX_PARENT_KEYS), a=alias)
        )
        # A parent without rows gives n = 0: the modulo fails and the table is skipped.
        return sql.SQL("{a}.keys[1 + g % {a}.n]").format(a=alias)


class _CannotSeed(Exception):
    """A table the generator cannot fill, with the reason."""


# --- seeding -------------------------------------------------------------------------------


@dataclasses.dataclass
class SeedOutcome:
    #: (table, rows inserted), in the order they were seeded.
    seeded: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    #: "could not seed <table>: <reason>" notes.
    skipped: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0


def seed_tables(
    conn: psycopg.Connection[Any],
    tables: list[Table],
    rows: int,
    counts: Mapping[str, int] | None = None,
) -> SeedOutcome:
    """Insert ``rows`` generated rows into each of ``tables`` (in order), then commit.

    ``counts`` gives some tables (by name) another number of rows. ``conn`` must
    not be in a transaction. Each table has its own savepoint: one that fails is
    rolled back, noted, and the others are kept.
    """
    outcome = SeedOutcome()
    salt = uuid.uuid4().hex[:8]
    started = time.perf_counter()
    with conn.transaction():
        for table in tables:
            try:
                with conn.transaction():
                    count = (counts or {}).get(table.name, rows)
                    statement = _Insert(conn, table, count, salt).statement()
                    cursor = conn.execute(statement)
                    outcome.seeded.append((table.name, max(cursor.rowcount, 0)))
            except _CannotSeed as exc:
                outcome.skipped.append(f"could not seed {table.name}: {exc}")
            except psycopg.Error as exc:
                outcome.skipped.append(f"could not seed {table.name}: {_error_text(exc)}")
    if outcome.seeded:
        autocommit = conn.autocommit
        conn.autocommit = True
        try:
            for name, _ in outcome.seeded:
                table = next(t for t in tables if t.name == name)
                with contextlib.suppress(psycopg.Error):  # a nicety: the rows are there
                    conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table.ident))
        finally:
            conn.autocommit = autocommit
    outcome.seconds = time.perf_counter() - started
    return outcome


def _error_text(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return primary or str(exc).strip().splitlines()[0]


#: Table names -> the rows each should get (``--stats-url`` scaled sizes).
Sizes = Callable[[list[str]], Mapping[str, int]]


class Seeder:
    """Seeds the tables of one audit run, each at most once.

    ``sizes``, when given, decides the rows of each table of one seeding call
    (``rows`` is then the default for tables it leaves out).
    """

    def __init__(
        self,
        info: ConnectionInfo,
        rows: int,
        sizes: Sizes | None = None,
        *,
        state_operations: bool = False,
    ) -> None:
        self.info = info
        self.rows = rows
        self.sizes = sizes
        self.state_operations = state_operations
        self._done: set[int] = set()
        self._seeded: list[tuple[str, int]] = []
        self._skipped: list[str] = []
        self._seconds = 0.0

    def seed(self, migrations: Iterable[Any], state: Any) -> SeedOutcome:
        """Seed what ``migrations`` touch, as they stand in ``state`` (before them)."""
        names = touched_tables(migrations, state, state_operations=self.state_operations)
        if not names:
            return SeedOutcome()
        with self.info.connect(autocommit=True) as conn:
            tables = tables_to_seed(conn, names, self._done)
            counts = self.sizes([t.name for t in tables]) if self.sizes and tables else None
            outcome = seed_tables(conn, tables, self.rows, counts)
        self._done.update(t.oid for t in tables)
        self._seeded.extend(outcome.seeded)
        self._skipped.extend(outcome.skipped)
        self._seconds += outcome.seconds
        return outcome

    @property
    def seconds(self) -> float:
        """Time spent seeding so far in this run."""
        return self._seconds

    def notes(self) -> list[str]:
        """For the report: what went where and how long it took, then what was skipped."""
        out: list[str] = []
        if self._seeded:
            parts = ", ".join(f"{rows:,} into {name}" for name, rows in self._seeded)
            out.append(
                f"--seed-rows: inserted generated rows before tracing ({parts}) in "
                f"{self._seconds:.1f}s; durations are for tables of that size"
            )
        elif not self._skipped:
            out.append(
                "--seed-rows: no table that existed before the change is touched by it; "
                "nothing was seeded"
            )
        out.extend(self._skipped)
        return out
