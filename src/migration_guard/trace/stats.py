"""How big production's tables are, and how long a blocking lock on them would last.

``--stats-url`` (or ``MIGRATION_GUARD_STATS_URL``) points at a production-like
server, typically a replica. The connection is read-only three times over: it
asks the server for ``default_transaction_read_only``, starts every
transaction with ``SET TRANSACTION READ ONLY``, and ends every transaction with
a rollback. It also sets short ``statement_timeout`` and ``lock_timeout``: the
size functions take ACCESS SHARE on the table for a moment, and must never
queue behind a running migration on production.

It gives:

* the server's major version, which becomes production's version (unless
  ``postgres_version`` is set): version-dependent advice follows it and the
  report says when the scratch server differs;
* for each blocking finding (a lock that blocks reads or writes), the
  estimated rows (``pg_class.reltuples``, else ``pg_stat_user_tables.n_live_tup``)
  and on-disk size (``pg_total_relation_size``) of the tables involved, found by
  name over the server's ``search_path``.

Durations are estimates: once per run, on the scratch server, a throwaway
table of a few tens of MB is scanned, indexed and rewritten; bytes divided by
those rates give the seconds reads or writes would wait on production. Locks
that only change the catalog get no estimate: they are brief, but wait behind
every running transaction on the table, and everything queues behind them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import sql

from .. import sqlfacts
from ..exceptions import ConfigurationError, StatsUnavailable
from ..findings import Blocks, Evidence, Finding, TableSize
from ..postgres.base import ConnectionInfo, major_of, redact, version_text
from ..postgres.url import invalid_url, parse_url

if TYPE_CHECKING:
    from ..conf import Config
    from ..results import MigrationResult

ENV_VAR = "MIGRATION_GUARD_STATS_URL"

#: Settings of the stats connection (sent as startup options).
SESSION_SETTINGS = {
    "default_transaction_read_only": "on",
    "statement_timeout": "10s",
    "lock_timeout": "2s",
    "idle_in_transaction_session_timeout": "60s",
}
APPLICATION_NAME = "migration-guard-stats"

#: Rows of the calibration table (about 25 MB with its index).
CALIBRATION_ROWS = 250_000

REWRITE = "rewrite"
SCAN = "scan"
INDEX = "index build"

#: Rules whose hazard is an index build on the table.
_INDEX_RULES = frozenset(
    {"add-index-non-concurrent", "add-unique-constraint", "reindex-non-concurrent"}
)

UNKNOWN_SIZES_NOTE = (
    "table sizes unknown: pass --stats-url (a read-only connection to a replica or a "
    "production-like server) to see how big the tables of blocking findings are and "
    "estimate how long reads or writes would wait"
)


def stats_url(config: Config) -> str | None:
    """The configured stats URL: settings or command line, else the environment."""
    return config.stats_url or os.environ.get(ENV_VAR) or None


# --- the read-only connection ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ProductionTable:
    relation: str
    rows: int
    #: pg_total_relation_size: heap, TOAST and indexes.
    total_bytes: int
    #: pg_table_size: heap and TOAST (what a scan or an index build reads).
    table_bytes: int


SIZE_QUERY = """
WITH rel AS (
    SELECT c.oid, c.relname, c.relkind FROM pg_class c
    WHERE c.oid = to_regclass(quote_ident(%s))
), parts AS (
    SELECT rel.oid AS relid FROM rel WHERE rel.relkind <> 'p'
    UNION ALL
    SELECT t.relid FROM rel, pg_partition_tree(rel.oid) t WHERE rel.relkind = 'p' AND t.isleaf
)
SELECT rel.relname, rel.relkind,
       coalesce(sum(CASE WHEN p.reltuples > 0 THEN p.reltuples::bigint
                         ELSE coalesce(s.n_live_tup, 0) END), 0)::bigint,
       coalesce(sum(pg_total_relation_size(p.oid)), 0)::bigint,
       coalesce(sum(pg_table_size(p.oid)), 0)::bigint
FROM rel
LEFT JOIN parts ON true
LEFT JOIN pg_class p ON p.oid = parts.relid
LEFT JOIN pg_stat_user_tables s ON s.relid = p.oid
GROUP BY rel.relname, rel.relkind
"""

#: Before PostgreSQL 12 (no pg_partition_tree): the relation alone.
SIZE_QUERY_11 = """
SELECT c.relname, c.relkind,
       (CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint
             ELSE coalesce(s.n_live_tup, 0) END)::bigint,
       pg_total_relation_size(c.oid)::bigint, pg_table_size(c.oid)::bigint
FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.oid = to_regclass(quote_ident(%s))
"""


class StatsConnection:
    """A read-only connection to a production-like server; nothing it runs can write."""

    def __init__(self, url: str) -> None:
        #: For messages only (the URL itself goes to libpq as given, its defaults intact).
        self.info = parse_url(url, origin="--stats-url")
        self._conn = self._connect(url)
        self.server_version = int(self._conn.info.server_version)
        self._cache: dict[str, ProductionTable | None] = {}
        #: Tables whose size could not be read (timeout, permission...), with the error.
        self.errors: dict[str, str] = {}
        #: Names found on the server that are not tables (indexes, sequences...).
        self.not_tables: set[str] = set()

    @property
    def major(self) -> int:
        return major_of(self.server_version)

    @property
    def description(self) -> str:
        """Version and where, without any secret."""
        i = self._conn.info
        where = i.host if i.host.startswith("/") else f"{i.host}:{i.port}"
        return f"PostgreSQL {version_text(self.server_version)} at {i.user}@{where}/{i.dbname}"

    def _connect(self, url: str) -> psycopg.Connection[Any]:
        params: dict[str, Any] = pg_conninfo.conninfo_to_dict(url)
        settings = " ".join(f"-c {k}={v}" for k, v in SESSION_SETTINGS.items())
        params["options"] = f"{params.get('options', '')} {settings}".strip()
        params.setdefault("connect_timeout", 10)
        params.setdefault("application_name", APPLICATION_NAME)
        try:
            return psycopg.connect(pg_conninfo.make_conninfo(**params), autocommit=False)
        except psycopg.Error as exc:
            raise StatsUnavailable(
                f"cannot connect to the --stats-url server {self.info.redacted()}: "
                f"{redact(str(exc).strip())}. Check the URL (or {ENV_VAR}), or leave it out: "
                "the audit then reports no table sizes."
            ) from None

    def query(self, query: str | sql.Composed | sql.SQL, params: Sequence[Any] = ()) -> list[Any]:
        """Run one query in a read-only transaction that is rolled back."""
        conn = self._conn
        try:
            conn.execute("SET TRANSACTION READ ONLY")
            return conn.execute(query, params).fetchall()
        finally:
            conn.rollback()

    def execute(self, query: str | sql.Composed | sql.SQL, params: Sequence[Any] = ()) -> None:
        """Run a statement the same way (for tests that prove it cannot write)."""
        conn = self._conn
        try:
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(query, params)
        finally:
            conn.rollback()

    def table(self, name: str) -> ProductionTable | None:
        """Rows and bytes of the table ``name`` over the search_path; None when absent."""
        if name not in self._cache:
            self._cache[name] = self._lookup(name)
        return self._cache[name]

    def _lookup(self, name: str) -> ProductionTable | None:
        try:
            query = SIZE_QUERY if self.major >= 12 else SIZE_QUERY_11
            rows = self.query(query, (name,))
        except psycopg.Error as exc:  # a timeout on a busy server, a permission...
            self.errors[name] = redact(str(exc).strip().splitlines()[0])
            return None
        if not rows:
            return None
        relname, relkind, tuples, total, heap = rows[0]
        if relkind not in ("r", "p", "m"):
            self.not_tables.add(name)
            return None
        return ProductionTable(relname, int(tuples or 0), int(total or 0), int(heap or 0))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


@contextlib.contextmanager
def open_stats(config: Config) -> Iterator[StatsConnection | None]:
    """The stats connection when a URL is configured, else None; closed afterwards."""
    url = stats_url(config)
    if not url:
        yield None
        return
    try:
        stats = StatsConnection(url)
    except ConfigurationError as exc:
        raise StatsUnavailable(str(exc)) from None
    except (psycopg.Error, ValueError):  # a bad URL (conninfo syntax, a port not a number)
        raise StatsUnavailable(
            str(invalid_url(url, "--stats-url", "libpq cannot read it"))
        ) from None
    try:
        yield stats
    finally:
        stats.close()


# --- how fast this machine works ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Rates:
    """Bytes per second of each kind of table work, measured on the scratch server."""

    scan: float
    rewrite: float
    index: float
    #: Size of the calibration table and how long measuring took.
    sample_bytes: int
    seconds: float

    def of(self, kind: str) -> float:
        return {SCAN: self.scan, REWRITE: self.rewrite, INDEX: self.index}[kind]


def calibrate(info: ConnectionInfo, rows: int = CALIBRATION_ROWS) -> Rates:
    """Time a scan, an index build and a rewrite of a generated table on ``info``'s database."""
    started = time.perf_counter()
    table = sql.Identifier(f"migration_guard_calibration_{uuid.uuid4().hex[:8]}")
    with info.connect(autocommit=True) as conn:
        conn.execute("SET max_parallel_workers_per_gather = 0")
        conn.execute("SET maintenance_work_mem = '64MB'")
        try:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint NOT NULL, a integer NOT NULL, "
                    "b text NOT NULL, c timestamptz NOT NULL)"
                ).format(table)
            )
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, (random() * 1e9)::int, md5(g::text), "
                    "now() - g * interval '1 second' FROM generate_series(1, {}) g"
                ).format(table, sql.Literal(rows))
            )
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table))
            heap = _size(conn, "pg_table_size", table)
            scan = min(
                _timed(conn, sql.SQL("SELECT count(*) FROM {} WHERE c IS NULL").format(table))
                for _ in range(2)
            )
            index = _timed(conn, sql.SQL("CREATE INDEX ON {} (a)").format(table))
            total = _size(conn, "pg_total_relation_size", table)
            rewrite = _timed(
                conn, sql.SQL("ALTER TABLE {} ALTER COLUMN a TYPE bigint").format(table)
            )
        finally:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
    return Rates(
        scan=heap / scan,
        rewrite=total / rewrite,
        index=heap / index,
        sample_bytes=total,
        seconds=time.perf_counter() - started,
    )


def _timed(conn: psycopg.Connection[Any], statement: sql.Composed) -> float:
    started = time.perf_counter()
    conn.execute(statement)
    return max(time.perf_counter() - started, 1e-6)


def _size(conn: psycopg.Connection[Any], function: str, table: sql.Identifier) -> int:
    query = sql.SQL("SELECT {}({}::regclass)").format(
        sql.Identifier(function), sql.Literal(table.as_string(conn))
    )
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


# --- findings ----------------------------------------------------------------------------------


def is_blocking(finding: Finding) -> bool:
    return any(lock.blocks is not Blocks.NOTHING for lock in finding.locks)


def work_kind(finding: Finding) -> str | None:
    """What the finding's operation does to its table while holding the lock, if anything."""
    from ..rules import registry

    table = finding.table
    observed = finding.evidence in (Evidence.OBSERVED, Evidence.CONTRADICTED)
    if _builds_index(finding) and finding.evidence is not Evidence.CONTRADICTED:
        return INDEX
    if table and any(r.relation == table for r in finding.rewrites):
        return REWRITE
    if table and any(s.relation == table for s in finding.scans):
        return SCAN
    if not observed:
        prediction = getattr(registry().get(finding.rule), "predicts", None)
        if getattr(prediction, "rewrite", False):
            return REWRITE
        if getattr(prediction, "scan", False):
            return SCAN
    return None


def _builds_index(finding: Finding) -> bool:
    if finding.rule in _INDEX_RULES:
        return True
    return any(stmt.builds_index for text in finding.sql for stmt in sqlfacts.parse(text))


def _mb(n: float) -> str:
    return f"{n / (1024 * 1024):,.1f} MB"


class SizeAnnotator:
    """Adds production sizes and wait estimates to the blocking findings of a run."""

    def __init__(self, stats: StatsConnection, scratch: ConnectionInfo) -> None:
        self.stats = stats
        self.scratch = scratch
        self.rates: Rates | None = None
        self.missing: dict[str, None] = {}

    def _rates(self) -> Rates:
        if self.rates is None:
            self.rates = calibrate(self.scratch)
        return self.rates

    def finding(self, finding: Finding) -> Finding:
        if not is_blocking(finding):
            return finding
        names: dict[str, None] = {}
        if finding.table:
            names[finding.table] = None
        for lock in finding.locks:
            if lock.blocks is not Blocks.NOTHING:
                names.setdefault(lock.relation, None)
        found: dict[str, ProductionTable] = {}
        for name in names:
            table = self.stats.table(name)
            if table is None:
                if name not in self.stats.errors and name not in self.stats.not_tables:
                    self.missing.setdefault(name, None)
            else:
                found[name] = table
        if not found:
            return finding
        main_name = finding.table if finding.table in found else next(iter(found))
        main = found[main_name]
        kind = work_kind(finding) if main_name == finding.table else None
        seconds: float | None = None
        if kind is None:
            note = (
                f"production size: {main_name} has about {main.rows:,} rows "
                f"({_mb(main.total_bytes)}); the lock is brief (no work on the table's rows), "
                "but it waits behind running transactions and reads/writes queue behind it"
            )
        else:
            rates = self._rates()
            work_bytes = main.total_bytes if kind == REWRITE else main.table_bytes
            seconds = work_bytes / rates.of(kind)
            note = (
                f"estimate: {kind} of {main_name} ({_mb(work_bytes)}) at "
                f"{_mb(rates.of(kind))}/s, the rate measured on the scratch server, takes about "
                f"{seconds:.1f}s while the lock is held; production hardware and load differ"
            )
        sizes = tuple(
            TableSize(
                relation=name,
                rows=table.rows,
                bytes=table.total_bytes,
                estimated_seconds=None if seconds is None else round(seconds, 2),
            )
            for name, table in found.items()
        )
        return finding.replace(sizes=sizes, notes=(*finding.notes, note))

    def notes(self) -> list[str]:
        out = [f"table sizes from --stats-url ({self.stats.description})"]
        if self.rates is not None:
            r = self.rates
            out[0] += (
                f"; wait estimates use rates measured on the scratch server in {r.seconds:.1f}s "
                f"with a {_mb(r.sample_bytes)} table: scan {_mb(r.scan)}/s, index build "
                f"{_mb(r.index)}/s, rewrite {_mb(r.rewrite)}/s"
            )
        for name, error in self.stats.errors.items():
            out.append(f"could not read the size of {name} on the --stats-url server: {error}")
        if self.missing:
            out.append(
                "not found on the --stats-url server (search_path), no size shown: "
                + ", ".join(self.missing)
            )
        return out


def attach_sizes(
    results: Sequence[MigrationResult], stats: StatsConnection | None, scratch: ConnectionInfo
) -> tuple[list[MigrationResult], list[str]]:
    """``results`` with sizes on blocking findings, and notes for the report."""
    blocking = any(is_blocking(f) for r in results for f in r.findings)
    if not blocking:
        return list(results), []
    if stats is None:
        return list(results), [UNKNOWN_SIZES_NOTE]
    annotator = SizeAnnotator(stats, scratch)
    out = [
        dataclasses.replace(r, findings=tuple(annotator.finding(f) for f in r.findings))
        for r in results
    ]
    return out, annotator.notes()
