"""The lock queue: a slow reader on each table, and who waits behind whom.

``LongReads`` opens one read transaction per table (``SELECT ... LIMIT 1``:
ACCESS SHARE, as a slow report holds it) just before the migration starts and
ends them after the configured time. A migration that asks for a lock that
conflicts with it (ACCESS EXCLUSIVE: most ``ALTER TABLE``) waits; every query
that arrives meanwhile queues behind the migration, reads included, unless
``lock_timeout`` makes the migration give up first.

``LockMonitor`` watches while the migration runs: every few milliseconds it
asks ``pg_stat_activity`` which of the migration and the workload wait for a
lock, and ``pg_blocking_pids`` behind whom. The queue *formed* on a table when
the migration waited for a lock held by a session that is not the workload's
(the slow reader, or anything else) while a query of the workload on that
table waited behind the migration. Waits of a few milliseconds behind the
workload's own one-statement queries are ordinary traffic, not a queue.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import sql

from ..postgres.base import ConnectionInfo

READER_NAME = "migration-guard-rehearsal-read"
MONITOR_NAME = "migration-guard-rehearsal-monitor"
POLL_SECONDS = 0.01

WAITING_QUERY = """
SELECT a.pid, pg_blocking_pids(a.pid)
FROM pg_stat_activity a
WHERE a.pid = ANY(%s) AND a.wait_event_type = 'Lock'
"""


class LongReads:
    """Read transactions held open on tables while a migration starts."""

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self._idle: list[psycopg.Connection[Any]] = []
        self._held: list[psycopg.Connection[Any]] = []
        self._release = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        return [c.info.backend_pid for c in self._held if not c.closed]

    def hold(self, tables: Sequence[str], seconds: float) -> list[str]:
        """Start holding a read on each of ``tables`` for ``seconds``; notes of failures."""
        notes: list[str] = []
        self._release = threading.Event()
        for table in tables:
            conn = self._idle.pop() if self._idle else self._connect(seconds)
            try:
                conn.execute("BEGIN")
                conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(table)))
            except psycopg.Error as exc:
                notes.append(f"no long read on {table}: {str(exc).strip().splitlines()[0]}")
                with contextlib.suppress(psycopg.Error):
                    conn.execute("ROLLBACK")
                self._idle.append(conn)
                continue
            self._held.append(conn)
        if self._held:
            self._thread = threading.Thread(
                target=self._wait_then_end,
                args=(seconds,),
                name="migration-guard-rehearsal-long-read",
                daemon=True,
            )
            self._thread.start()
        return notes

    def _connect(self, seconds: float) -> psycopg.Connection[Any]:
        idle = int((seconds + 30) * 1000)
        return self.info.connect(
            autocommit=True,
            application_name=READER_NAME,
            options=f"-c idle_in_transaction_session_timeout={idle} -c statement_timeout=30s",
        )

    def _wait_then_end(self, seconds: float) -> None:
        self._release.wait(seconds)
        self._end()

    def _end(self) -> None:
        held, self._held = self._held, []
        for conn in held:
            try:
                conn.execute("COMMIT")
                self._idle.append(conn)
            except psycopg.Error:
                with contextlib.suppress(Exception):
                    conn.close()

    def release(self) -> None:
        """End the reads now (the migration is over, or the audit stops)."""
        self._release.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._end()

    def close(self) -> None:
        self.release()
        for conn in self._idle:
            with contextlib.suppress(Exception):
                conn.close()
        self._idle = []


class LockMonitor:
    """Watches, while one migration runs, who waits for a lock behind whom."""

    def __init__(self, info: ConnectionInfo) -> None:
        self.info = info
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Tables whose queries waited behind a migration that itself waited.
        self.queued: set[str] = set()
        #: Seconds the migration was seen waiting for a lock.
        self.migration_waited = 0.0

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = self.info.connect(
                autocommit=True,
                application_name=MONITOR_NAME,
                options="-c statement_timeout=5s -c lock_timeout=5s",
            )
        return self._conn

    def start(
        self,
        migration_pid: int | None,
        workers: Callable[[], dict[int, str | None]],
    ) -> None:
        """Watch ``migration_pid``; ``workers`` gives each worker's pid -> table it waits on."""
        self.queued = set()
        self.migration_waited = 0.0
        self._stop = threading.Event()
        if migration_pid is None:
            return
        conn = self._connection()
        self._thread = threading.Thread(
            target=self._watch,
            args=(conn, migration_pid, workers),
            name="migration-guard-rehearsal-monitor",
            daemon=True,
        )
        self._thread.start()

    def _watch(
        self,
        conn: psycopg.Connection[Any],
        migration: int,
        workers: Callable[[], dict[int, str | None]],
    ) -> None:
        last = time.monotonic()
        while not self._stop.wait(POLL_SECONDS):
            current = workers()
            try:
                rows = conn.execute(WAITING_QUERY, ([migration, *current],)).fetchall()
            except psycopg.Error:
                return
            now = time.monotonic()
            waiting = {int(pid): {int(p) for p in blockers or ()} for pid, blockers in rows}
            blockers = waiting.get(migration)
            if blockers is not None:
                self.migration_waited += now - last
                # behind a session that is not the workload's: a slow reader, a report...
                if blockers - set(current):
                    for pid, behind in waiting.items():
                        table = current.get(pid)
                        if pid != migration and migration in behind and table:
                            self.queued.add(table)
            last = now

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def close(self) -> None:
        self.stop()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None
