"""Who is in the way: the backends a waiting migration is blocked by, in words.

While a migration statement runs, a watcher thread on a second connection asks
``pg_blocking_pids()`` about the migrating backend, a few times per lock
timeout, and remembers every backend it saw. When the statement fails on its
lock timeout, those are the blockers the log names: pid, ``application_name``,
user, state, how long its transaction has been open, and the start of its
query with every literal replaced by ``?`` (no parameters reach the log).

A wait is always sampled: the watcher polls at most a quarter of the current
lock timeout apart, and a wait that times out lasts the whole timeout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..sqlfacts import _tokenize

log = logging.getLogger("migration_guard.deploy")

#: Characters of a blocker's query text the log shows.
QUERY_CHARS = 100
#: The watcher's own connection, as DBAs see it in pg_stat_activity.
WATCHER_APPLICATION_NAME = "migration_guard blocker report"
#: Poll interval bounds (seconds).
MIN_POLL_S = 0.01
MAX_POLL_S = 1.0

#: One row per blocking pid. pid 0 is a prepared transaction (no backend).
BLOCKERS_SQL = """
SELECT b.pid, a.application_name, a.usename, a.state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       a.query, a.backend_type
FROM unnest(pg_blocking_pids(%s)) AS b(pid)
LEFT JOIN pg_stat_activity AS a ON a.pid = b.pid
"""

#: The same details for given pids (pre-flight).
ACTIVITY_SQL = """
SELECT a.pid, a.application_name, a.usename, a.state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
       a.query, a.backend_type
FROM pg_stat_activity AS a
WHERE a.pid = ANY(%s)
"""

_LITERALS = frozenset({"string", "dollar", "number"})


def mask_query(text: str | None, limit: int = QUERY_CHARS) -> str:
    """The start of ``text`` with literals as ``?``, comments dropped, whitespace folded.

    Client-side binding (Django's default with psycopg) puts parameter values
    into the query text PostgreSQL shows; they never reach the log. Control
    characters are folded too, so a query cannot forge log lines.
    """
    if not text:
        return ""
    out: list[str] = []
    pos = 0
    for tok in _tokenize(text):
        if pos < tok.start:
            out.append(" ")
        if tok.kind == "comment":
            out.append(" ")
        elif tok.kind in _LITERALS:
            out.append("?")
        else:
            out.append(tok.value)
        pos = tok.end
    # Whitespace and control characters (inside identifiers too) become one space.
    folded = " ".join("".join(ch if ch.isprintable() else " " for ch in "".join(out)).split())
    if len(folded) > limit:
        folded = folded[: limit - 1].rstrip() + "…"
    return folded


def format_age(seconds: float | None) -> str:
    """``"850 ms"``, ``"4.2 s"``, ``"14 min 3 s"``, ``"2 h 5 min"``."""
    if seconds is None:
        return "unknown"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@dataclasses.dataclass(frozen=True)
class Blocker:
    """A backend the migration waited for (or, in pre-flight, would have)."""

    pid: int
    application_name: str | None
    user: str | None
    state: str | None
    #: Seconds its transaction had been open when last seen; None outside a transaction.
    transaction_age_s: float | None
    #: Masked start of its query (see :func:`mask_query`).
    query: str
    backend_type: str | None = None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Blocker:
        pid, app, user, state, age, query, backend_type = row
        return cls(
            pid=int(pid),
            application_name=_clean(app),
            user=_clean(user),
            state=_clean(state),
            transaction_age_s=float(age) if age is not None else None,
            query=mask_query(query),
            backend_type=_clean(backend_type),
        )

    def describe(self) -> str:
        """One line: ``pid 4242: a 14 min 3 s transaction from reports-worker (idle in ...``."""
        if self.pid == 0:
            return (
                "a prepared transaction (pid 0): it holds its locks until COMMIT PREPARED or "
                "ROLLBACK PREPARED (see pg_prepared_xacts)"
            )
        source = self.application_name or (
            self.backend_type if self.backend_type and self.backend_type != "client backend" else ""
        )
        source = f"from {source}" if source else "from a client without application_name"
        if self.transaction_age_s is None:
            what = f"pid {self.pid}: a session {source}"
        else:
            what = f"pid {self.pid}: a {format_age(self.transaction_age_s)} transaction {source}"
        details = [self.state or "state unknown"]
        if self.user:
            details.append(f"user {self.user}")
        line = f"{what} ({', '.join(details)})"
        if self.query:
            line += f", query: {self.query}"
        return line


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in str(value)).split())
    return text or None


def merge(seen: dict[int, Blocker], found: Iterable[Blocker]) -> None:
    """Keep every blocker seen; a later sample updates (ages grow, states change)."""
    for blocker in found:
        seen[blocker.pid] = blocker


class BlockerWatch:
    """Samples ``pg_blocking_pids(pid)`` on its own connection while a statement runs.

    ``arm(pid, interval)`` before the statement, ``disarm()`` after it returns
    what was seen. The thread ticks every ``interval`` and samples a statement
    once it has run that long. A migration may send thousands of short
    statements, so arming and disarming take no lock and wake no thread: each
    is one attribute assignment (atomic under the GIL) of an immutable record,
    and the thread only reads it; the thread is woken only from its idle sleep,
    or when the new interval is shorter than its tick. :meth:`start` opens the
    connection at once, so that even the first, shortest lock wait finds it
    ready; it is in autocommit: the watcher never holds a snapshot or a lock
    anyone could wait for.
    """

    #: Seconds without a statement after which the thread sleeps until the next arm.
    IDLE_AFTER_S = 5.0

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._conn: Any = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._generation = 0
        #: (generation, pid, armed at, interval) of the statement running, or None.
        self._current: tuple[int, int, float, float] | None = None
        #: (generation, blockers seen by pid) of the statement last sampled.
        self._found: tuple[int, dict[int, Blocker]] = (0, {})
        self._tick = MAX_POLL_S
        self._idle = False
        self._last_active = time.monotonic()
        self._own_pid: int | None = None
        #: Why sampling is not possible (the connection failed), once it failed.
        self.unavailable: str | None = None

    def start(self) -> None:
        """Start the thread, which connects right away."""
        if self._thread is not None:
            return
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="migration_guard-blockers", daemon=True
                )
                self._thread.start()

    def arm(self, pid: int, interval_s: float) -> None:
        interval = min(MAX_POLL_S, max(MIN_POLL_S, interval_s))
        if self._thread is None:
            self.start()
        self._generation += 1
        self._current = (self._generation, pid, time.monotonic(), interval)
        if self._idle or interval < self._tick:
            with self._cond:
                self._cond.notify_all()

    def disarm(self) -> list[Blocker]:
        current, self._current = self._current, None
        self._last_active = time.monotonic()
        generation, seen = self._found
        if current is None or generation != current[0] or not seen:
            return []
        return [b for pid, b in sorted(seen.items()) if pid != self._own_pid]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._current = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        if self._conn is not None:
            with contextlib.suppress(Exception):  # closing a broken connection
                self._conn.close()
            self._conn = None

    # -- the thread -----------------------------------------------------------------
    def _run(self) -> None:
        # Signals go to the main thread, where their handlers run and where shielded()
        # holds them back; this thread never takes them.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        self._ensure_connection()
        while True:
            with self._cond:
                if self._closed:
                    return
                current = self._current
                if current is None and time.monotonic() - self._last_active > self.IDLE_AFTER_S:
                    self._idle = True
                    # arm() sets _current, then reads _idle: either it saw _idle (and its
                    # notify, under this lock, comes once this wait has begun), or this
                    # second look sees its statement.
                    if self._current is None:
                        self._cond.wait()
                    self._idle = False
                    continue
                if current is not None:
                    self._tick = current[3]
                self._cond.wait(timeout=self._tick)
                if self._closed:
                    return
            current = self._current
            if current is None:
                continue
            generation, pid, armed_at, interval = current
            if time.monotonic() - armed_at < interval:
                continue
            found = self._sample(pid)
            if not found:
                continue
            previous_generation, seen = self._found
            seen = dict(seen) if previous_generation == generation else {}
            merge(seen, found)
            self._found = (generation, seen)

    def _ensure_connection(self) -> None:
        if self._conn is not None or self.unavailable is not None:
            return
        try:
            self._conn = self._connect()
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self._own_pid = int(cursor.fetchone()[0])
        except Exception as exc:
            self.unavailable = f"{type(exc).__name__}: {exc}".strip()
            log.debug("blocker report unavailable: %s", self.unavailable)

    def _sample(self, pid: int) -> list[Blocker]:
        self._ensure_connection()
        if self.unavailable is not None:
            return []
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(BLOCKERS_SQL, [pid])
                rows = cursor.fetchall()
        except Exception as exc:
            self.unavailable = f"{type(exc).__name__}: {exc}".strip()
            log.debug("blocker report unavailable: %s", self.unavailable)
            return []
        return [Blocker.from_row(row) for row in rows]
