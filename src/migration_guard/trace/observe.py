"""Watch Postgres while a migration runs: locks, rewrites, scans.

Inside a migration's transaction, after each statement, one query reads what
the migrating backend holds (``pg_locks`` for its own pid), which relation
files changed (``pg_class.relfilenode``: a rewrite) and how many sequential
scans the transaction started (``pg_stat_xact_user_tables``). Only relations
that existed before the change count: a table the change creates has no
readers yet.

Statements of non-atomic migrations run one by one outside a transaction. Each
is wrapped in its own short transaction, which is what Postgres does for a
single statement anyway, so it is observed the same way. Statements that
refuse a transaction (``CREATE INDEX CONCURRENTLY``, ``VACUUM``...) are watched
from a second connection instead, which holds a snapshot and a light lock on
the target until it has seen what the statement takes or waits for: that
makes the observation deterministic even on empty tables.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import re
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from .. import sqlfacts
from ..collect import (
    DEFERRED,
    ORM,
    SCHEMA,
    ExecutedStatement,
    MigrationRecord,
    Observation,
    OperationRecord,
    StatementHooks,
)
from ..postgres.base import ConnectionInfo

SNAPSHOT_QUERY = """
SELECT c.oid::bigint, c.relname, c.relkind, c.relfilenode::bigint,
       coalesce(t.relname, c.relname) AS table_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE c.relkind IN ('r', 'p', 'i', 'I', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND n.nspname NOT LIKE 'pg\\_temp%%'
"""

#: After a statement: the relation locks the backend holds, and the file and scan count
#: of those relations only. A statement can rewrite or scan a relation only under a lock,
#: and locks are kept until the transaction ends, so nothing else can have changed; the
#: query's cost follows what the transaction touched, not the size of the schema. The scan
#: count is read with the function behind ``pg_stat_xact_user_tables.seq_scan``: the view
#: aggregates every table of the database before filtering (three times the cost), and
#: the oid floor leaves out what initdb created (the catalogs, information_schema).
OBSERVE_QUERY = """
WITH l AS (
  SELECT l.relation, l.mode FROM pg_locks l
   WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT 'l', relation::bigint, mode FROM l
UNION ALL
SELECT 'f', c.oid::bigint, c.relfilenode::text FROM pg_class c
 WHERE c.oid IN (SELECT relation FROM l)
UNION ALL
SELECT 's', c.oid::bigint, pg_stat_get_xact_numscans(c.oid)::text FROM pg_class c
 WHERE c.oid IN (SELECT relation FROM l) AND c.oid >= 16384
   AND c.relkind IN ('r', 't', 'm', 'p')
"""

#: At the start of a transaction: the locks already held, and every scan counter that is
#: not zero (from PostgreSQL 15 on, ``pg_stat_xact_*`` also counts what earlier
#: transactions of the session have not flushed yet; a table not listed starts at 0).
BASELINE_QUERY = """
SELECT 'l', l.relation::bigint, l.mode FROM pg_locks l
 WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
UNION ALL
SELECT 's', c.oid::bigint, pg_stat_get_xact_numscans(c.oid)::text FROM pg_class c
 WHERE c.oid >= 16384 AND c.relkind IN ('r', 't', 'm', 'p')
   AND pg_stat_get_xact_numscans(c.oid) > 0
"""

SAMPLE_QUERY = """
SELECT l.locktype, l.relation::bigint, l.mode, l.granted FROM pg_locks l WHERE l.pid = %s
"""

#: Statements Postgres refuses to run inside a transaction block.
_OUTSIDE_TRANSACTION = re.compile(
    r"^\s*(?:"
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY"
    r"|DROP\s+INDEX\s+CONCURRENTLY"
    r"|REINDEX\b.*\bCONCURRENTLY"
    r"|VACUUM\b|CREATE\s+DATABASE|DROP\s+DATABASE|ALTER\s+SYSTEM"
    r"|CREATE\s+TABLESPACE|DROP\s+TABLESPACE|CLUSTER\s*;?\s*$"
    r")",
    re.IGNORECASE | re.DOTALL,
)
_ACTIVE_SQL_TRANSACTION = "25001"
#: Words of a ``CREATE TABLE`` that make it read or lock another relation.
_CREATE_TABLE_READS = frozenset({"REFERENCES", "LIKE", "INHERITS", "PARTITION", "OF", "AS"})
#: Statement kinds that are never wrapped in a transaction of ours.
_KEEP_OUTSIDE = frozenset({sqlfacts.LOCK, sqlfacts.TRANSACTION, sqlfacts.SET})


def must_run_outside_transaction(text: str) -> bool:
    stripped = re.sub(r"^\s*(?:--[^\n]*\n|/\*.*?\*/)\s*", "", text, flags=re.DOTALL)
    return bool(_OUTSIDE_TRANSACTION.match(stripped))


@dataclasses.dataclass(frozen=True)
class Relation:
    oid: int
    name: str
    kind: str  # r, p, m: table-like; i, I: index
    table: str  # the table itself, or the table an index belongs to

    @property
    def is_index(self) -> bool:
        return self.kind in ("i", "I")


@dataclasses.dataclass
class RelationSnapshot:
    """Relations that existed before the change, with their files."""

    relations: dict[int, Relation]
    filenodes: dict[int, int]

    @property
    def oids(self) -> list[int]:
        return list(self.relations)

    @functools.cached_property
    def relation_tables(self) -> dict[str, str]:
        """Each relation's table (shared by the records of a change: read, never written)."""
        return {r.name: r.table for r in self.relations.values()}

    @functools.cached_property
    def tables(self) -> frozenset[str]:
        return frozenset(r.name for r in self.relations.values() if not r.is_index)

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every relation's name (tables and indexes)."""
        return frozenset(r.name for r in self.relations.values())

    def by_name(self, name: str | None) -> Relation | None:
        if not name:
            return None
        for rel in self.relations.values():
            if rel.name == name:
                return rel
        return None


VALID_CHECKS_QUERY = """
SELECT t.relname, pg_get_constraintdef(c.oid)
FROM pg_constraint c
JOIN pg_class t ON t.oid = c.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE c.contype = 'c' AND c.convalidated AND cardinality(c.conkey) = 1
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
"""
_IS_NOT_NULL = re.compile(r'^CHECK \(\(?("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) IS NOT NULL\)?\)$')


def valid_not_null_checks(connection: Any) -> frozenset[tuple[str, str]]:
    """(table, column) covered by a validated ``CHECK (column IS NOT NULL)``."""
    out = set()
    for table, definition in connection.execute(VALID_CHECKS_QUERY).fetchall():
        match = _IS_NOT_NULL.match(definition or "")
        if match:
            name = match.group(1)
            column = name[1:-1].replace('""', '"') if name.startswith('"') else name
            out.add((table, column))
    return frozenset(out)


def take_snapshot(cursor_owner: Any, previous: RelationSnapshot | None = None) -> RelationSnapshot:
    """Read the relations of the user's schemas (``cursor_owner``: psycopg connection).

    ``previous``: a snapshot of the same database taken earlier; the relations
    that did not change since are its objects (``--all`` takes one snapshot per
    migration, and building some 1,500 relations each time was most of its cost).
    """
    rows = cursor_owner.execute(SNAPSHOT_QUERY).fetchall()
    known = previous.relations if previous is not None else {}
    relations: dict[int, Relation] = {}
    filenodes: dict[int, int] = {}
    for oid, name, kind, node, table in rows:
        rel = known.get(oid)
        if rel is None or rel.name != name or rel.kind != kind or rel.table != table:
            rel = Relation(int(oid), name, kind, table)
        relations[rel.oid] = rel
        filenodes[rel.oid] = int(node)
    return RelationSnapshot(relations, filenodes)


class Tracer(StatementHooks):
    """Statement hooks that observe Postgres; one per change being audited."""

    def __init__(
        self, scratch: ConnectionInfo, snapshot: RelationSnapshot, *, fresh: bool = False
    ) -> None:
        self.scratch = scratch
        self.snapshot = snapshot
        #: The snapshot was read right before this migration: its files are current.
        self._fresh = fresh
        self._held: set[tuple[int, str]] = set()
        self._scans: dict[int, int] = {}
        self._need_baseline = True
        self._files: dict[int, int] = dict(snapshot.filenodes)
        #: Statements run in the transaction, and how many had run at the last reading.
        self._statements = 0
        self._observed_at = 0
        self._sampler: psycopg.Connection[Any] | None = None

    # -- StatementHooks ---------------------------------------------------------
    def begin_migration(self, connection: Any, record: MigrationRecord) -> None:
        """Observe this migration against the state right before it.

        Relation files are read again here, so a rewrite done by an earlier
        migration of the change is not reported a second time by this one.
        """
        self._new_transaction()
        connection.ensure_connection()
        if not self._fresh:
            self._files.update(self._filenodes(connection.connection))

    def _filenodes(self, conn: Any) -> dict[int, int]:
        rows = conn.execute(
            "SELECT oid::bigint, relfilenode::bigint FROM pg_class "
            "WHERE oid = ANY(%(oids)s::oid[])",
            {"oids": self.snapshot.oids},
        ).fetchall()
        return {int(oid): int(node) for oid, node in rows}

    def before_statement(self, connection: Any) -> None:
        if self._need_baseline:
            self._baseline(connection)
        self._statements += 1

    def wants_observation(self, stmt: ExecutedStatement, op: OperationRecord | None) -> bool:
        if stmt.origin not in (SCHEMA, DEFERRED):
            return False
        if self._touches_only_new_relations(stmt):
            # What the query would read, known without it: nothing on a relation that
            # existed before the change.
            stmt.observation = Observation(held=self._held_names())
            return False
        return True

    def _touches_only_new_relations(self, stmt: ExecutedStatement) -> bool:
        """A ``CREATE TABLE`` or ``CREATE INDEX`` that can lock no relation the change found.

        A table created bare (no ``REFERENCES``, ``LIKE``, ``INHERITS``, ``PARTITION
        OF``, ``OF`` type or ``AS`` query: each of those reads or locks another
        relation), or an index on a table that did not exist before the change
        (building it scans that table alone). Anything else, or a name the change
        found, is observed.
        """
        facts = stmt.facts
        if facts.kind not in (sqlfacts.CREATE_TABLE, sqlfacts.CREATE_INDEX) or facts.concurrently:
            return False
        if self._statements != self._observed_at + 1:
            return False  # another statement ran unobserved since: the query reads its locks
        if not facts.table or facts.table in self.snapshot.names:
            return False
        if facts.index and facts.index in self.snapshot.names:
            return False
        words = {
            text.upper()
            for kind, text in sqlfacts.tokens(stmt.sql)
            if kind == "ident" or (kind == "op" and text == ";")
        }
        if ";" in words:  # more than one statement
            return False
        if facts.kind == sqlfacts.CREATE_TABLE:
            return not words & _CREATE_TABLE_READS
        return True

    def _held_names(self) -> tuple[tuple[str, str], ...]:
        rels = self.snapshot.relations
        return tuple(sorted((rels[oid].name, mode) for oid, mode in self._held))

    def observe(self, connection: Any) -> Observation | None:
        raw = connection.connection
        rows = raw.execute(OBSERVE_QUERY, prepare=True).fetchall()
        return self._digest(rows)

    def end_operation(self, connection: Any, op: OperationRecord) -> None:
        if op.orm_count and connection.in_atomic_block:
            op.observation = self.observe(connection)

    def run_outside_transaction(
        self, connection: Any, run: Callable[[], Any], stmt: ExecutedStatement
    ) -> Any:
        if stmt.origin == ORM:
            return run()
        raw = connection.connection
        if raw.info.transaction_status != TransactionStatus.IDLE:
            # the migration's own SQL opened a transaction (RunSQL "BEGIN; ..."):
            # observe inside it, as for an atomic migration
            result = run()
            stmt.observation = self.observe(connection)
            return result
        if stmt.facts.kind in _KEEP_OUTSIDE or must_run_outside_transaction(stmt.sql):
            # wrapping these would change what they do (LOCK TABLE fails outside a
            # transaction block; BEGIN/COMMIT/SET LOCAL act on the transaction itself)
            return self._sampled(connection, run, stmt)
        raw.execute("BEGIN")
        self._new_transaction()
        self._baseline(connection)
        try:
            result = run()
        except psycopg.Error as exc:
            raw.execute("ROLLBACK")
            if getattr(exc, "sqlstate", None) == _ACTIVE_SQL_TRANSACTION:
                return self._sampled(connection, run, stmt)
            raise
        except Exception as exc:
            raw.execute("ROLLBACK")
            cause = exc.__cause__
            if getattr(cause, "sqlstate", None) == _ACTIVE_SQL_TRANSACTION:
                return self._sampled(connection, run, stmt)
            raise
        try:
            stmt.observation = self.observe(connection)
        finally:
            raw.execute("COMMIT")
        return result

    def close(self) -> None:
        if self._sampler is not None:
            with contextlib.suppress(Exception):
                self._sampler.close()
            self._sampler = None

    # -- inside a transaction ---------------------------------------------------
    def _new_transaction(self) -> None:
        self._held = set()
        self._scans = {}
        self._need_baseline = True

    def _baseline(self, connection: Any) -> None:
        """Read counters at the start of a transaction.

        From PostgreSQL 15 on, ``pg_stat_xact_*`` also counts what earlier
        transactions of the session have not flushed yet, so growth is measured
        from here; nothing is flushed while a transaction is open.
        """
        self._need_baseline = False
        self._observed_at = self._statements
        rels = self.snapshot.relations
        rows = connection.connection.execute(BASELINE_QUERY, prepare=True).fetchall()
        for kind, oid, value in rows:
            if oid not in rels:
                continue
            if kind == "l":
                self._held.add((oid, value))
            elif kind == "s":
                self._scans[oid] = int(value)

    def _digest(self, rows: Iterable[tuple[str, int, str]]) -> Observation:
        self._observed_at = self._statements
        rels = self.snapshot.relations
        held: set[tuple[int, str]] = set()
        rewrites: list[str] = []
        scans: list[tuple[str, int]] = []
        for kind, oid, value in rows:
            if oid not in rels:
                continue  # a catalog, or a relation the change created
            if kind == "l":
                held.add((oid, value))
            elif kind == "f":
                node = int(value)
                if self._files.get(oid) not in (None, node):
                    rewrites.append(rels[oid].name)
                self._files[oid] = node
            elif kind == "s":
                count = int(value)
                grew = count - self._scans.get(oid, 0)
                if grew > 0:
                    scans.append((rels[oid].name, grew))
                self._scans[oid] = count
        new = sorted(held - self._held, key=lambda p: (rels[p[0]].name, p[1]))
        self._held |= held
        return Observation(
            locks=tuple((rels[oid].name, mode) for oid, mode in new),
            rewrites=tuple(sorted(rewrites)),
            scans=tuple(sorted(scans)),
            held=self._held_names(),
        )

    # -- outside a transaction: a second connection watches -------------------------
    def _sampler_connection(self) -> psycopg.Connection[Any]:
        if self._sampler is None or self._sampler.closed:
            self._sampler = self.scratch.connect(autocommit=True)
        return self._sampler

    def _targets(self, raw: Any, stmt: ExecutedStatement) -> list[int]:
        facts = stmt.facts
        names = [n for n in (facts.table, facts.index, *facts.tables) if n]
        oids: list[int] = []
        for name in names:
            rel = self.snapshot.by_name(name)
            if rel is None:
                continue
            table = self.snapshot.by_name(rel.table) if rel.is_index else rel
            if table is not None and table.oid not in oids:
                oids.append(table.oid)
        return oids

    def _sampled(self, connection: Any, run: Callable[[], Any], stmt: ExecutedStatement) -> Any:
        raw = connection.connection
        pid = raw.info.backend_pid
        sampler = self._sampler_connection()
        targets = self._targets(raw, stmt)
        rels = self.snapshot.relations
        seen: dict[tuple[int, str], None] = {}
        stop = threading.Event()
        holding = threading.Event()
        # Hold a snapshot and ACCESS SHARE on the targets: the statement will
        # wait for us while holding (or asking for) its own locks.
        sampler.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        try:
            for oid in targets:
                sampler.execute(
                    sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
                        sql.Identifier(rels[oid].name)
                    )
                )
            sampler.execute("SELECT 1")
            holding.set()
        except psycopg.Error:
            sampler.execute("ROLLBACK")

        def watch() -> None:
            released_at = time.monotonic() + 5.0
            while True:
                try:
                    rows = sampler.execute(SAMPLE_QUERY, (pid,)).fetchall()
                except psycopg.Error:
                    return
                waiting = False
                for locktype, oid, mode, granted in rows:
                    if not granted:
                        waiting = True
                    if locktype == "relation" and oid in rels:
                        seen.setdefault((oid, mode), None)
                if holding.is_set() and (waiting or time.monotonic() > released_at):
                    with contextlib.suppress(psycopg.Error):
                        sampler.execute("COMMIT")
                    holding.clear()
                if stop.is_set():
                    return
                time.sleep(0.002)

        thread = threading.Thread(target=watch, name="migration-guard-lock-sampler", daemon=True)
        thread.start()
        try:
            return run()
        finally:
            stop.set()
            thread.join(timeout=10)
            if holding.is_set():
                with contextlib.suppress(psycopg.Error):
                    sampler.execute("COMMIT")
            locks = tuple(sorted((rels[oid].name, mode) for oid, mode in seen))
            stmt.observation = Observation(
                locks=locks, method="sampled", held=locks, rewrites=self._rewritten(sampler)
            )

    def _rewritten(self, conn: psycopg.Connection[Any]) -> tuple[str, ...]:
        """Relations whose file changed since last seen (read from any connection)."""
        rels = self.snapshot.relations
        out = []
        with contextlib.suppress(psycopg.Error):
            for oid, node in self._filenodes(conn).items():
                if self._files.get(oid) not in (None, node):
                    out.append(rels[oid].name)
                self._files[oid] = node
        return tuple(sorted(out))
