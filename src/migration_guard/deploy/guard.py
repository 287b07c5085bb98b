"""The retry loops, and the execute wrapper that watches every statement a migration sends.

Units of retry:

* **an atomic migration** (and an atomic operation, i.e. ``RunPython(atomic=True)``,
  inside a non-atomic one): :meth:`Guard.run_atomic` runs the whole
  transaction; on a lock timeout PostgreSQL has rolled all of it back, so the
  pause holds nothing and the next attempt starts from the same state;
* **one statement of a non-atomic migration** sent outside any transaction:
  the execute wrapper itself sends it again (:meth:`Guard._statement`), so the
  statements before it are not repeated. A failed ``CREATE INDEX
  CONCURRENTLY`` / ``REINDEX CONCURRENTLY`` leaves an INVALID index; it is
  dropped (``DROP INDEX CONCURRENTLY IF EXISTS``) before the pause, and an
  INVALID index of the same name left by an earlier deploy is dropped before
  the first attempt (``IF NOT EXISTS`` would otherwise skip it and keep it
  invalid for good).

A lock timeout inside a transaction the migration opened itself (``BEGIN`` in
RunSQL, ``transaction.atomic`` in RunPython code of a non-atomic migration)
cannot be resumed and stops migrate. Every lock timeout is reported with the
backends that were in the way (:mod:`.blockers`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from psycopg import sql as pgsql

from .. import pglocks as lockmodes
from .. import sqlfacts
from ..findings import Blocks
from ..pglocks import statement_locks
from ..signals import shielded
from . import messages, running
from .blockers import (
    ACTIVITY_SQL,
    WATCHER_APPLICATION_NAME,
    Blocker,
    BlockerWatch,
    format_age,
    mask_query,
)
from .errors import (
    GuardStop,
    LockRetriesExhausted,
    LockTimeoutNotRetried,
    PreflightBlocked,
    StatementTimedOut,
    TransactionTimedOut,
)
from .schedule import duration_ms, format_ms
from .settings import GuardSettings

log = logging.getLogger("migration_guard.deploy")

T = TypeVar("T")

#: SQLSTATE of a lock wait ended by lock_timeout (also NOWAIT).
LOCK_NOT_AVAILABLE = "55P03"
#: SQLSTATE of a statement cancelled (statement_timeout, pg_cancel_backend).
QUERY_CANCELED = "57014"
#: SQLSTATE of a session ended by transaction_timeout (PostgreSQL 17+).
TRANSACTION_TIMEOUT_CODE = "25P04"

# Failure kinds
LOCK = "lock"
PREFLIGHT = "preflight"
STATEMENT_TIMEOUT = "statement_timeout"
TRANSACTION_TIMEOUT = "transaction_timeout"
#: Failures that end migrate at once (no retry: the work would be as long again).
FATAL = (STATEMENT_TIMEOUT, TRANSACTION_TIMEOUT)

#: Characters of the migration's own statement shown in a log line.
STATEMENT_CHARS = 160

#: A statement that sets lock_timeout itself (planner output does: SET lock_timeout = '5s').
_SETS_LOCK_TIMEOUT = re.compile(
    r"(?is)^\s*((re)?set\b.*\block_timeout\b|select\s+set_config\s*\(\s*'lock_timeout')"
)

#: Statements that take no lock blocking reads or writes (pre-flight skips them unparsed).
_NEVER_BLOCKING = re.compile(
    r"(?is)^\s*(select|insert|update|delete|with|set|reset|show|begin|commit|rollback|"
    r"savepoint|release|start\s+transaction)\b"
)
_CONCURRENTLY = re.compile(r"(?i)\bconcurrently\b")

#: Granted table locks other backends took in transactions older than %s seconds.
OLD_HOLDERS_SQL = """
SELECT l.pid, l.mode
FROM pg_locks AS l
JOIN pg_stat_activity AS a ON a.pid = l.pid
WHERE l.locktype = 'relation'
  AND l.granted
  AND l.pid <> pg_backend_pid()
  AND l.relation = to_regclass(quote_ident(%s))
  AND a.xact_start < clock_timestamp() - make_interval(secs => %s)
"""

#: INVALID indexes of a table: schema, name.
INVALID_INDEXES_SQL = """
SELECT n.nspname, c.relname
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE i.indrelid = to_regclass(quote_ident(%s)) AND NOT i.indisvalid
"""

#: The table of an index, by the index's name.
INDEX_TABLE_SQL = """
SELECT c.relname FROM pg_index AS i JOIN pg_class AS c ON c.oid = i.indrelid
WHERE i.indexrelid = to_regclass(quote_ident(%s))
"""


def sqlstate(exc: BaseException | None) -> str | None:
    """The SQLSTATE of ``exc`` or of the driver error it wraps (Django wraps psycopg's)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(code, str) and code:
            return code
        exc = exc.__cause__ or exc.__context__
    return None


@dataclasses.dataclass
class Failure:
    """Why an attempt ended: a lock timeout, a pre-flight stop, or statement_timeout."""

    kind: str
    statement: str
    blockers: list[Blocker] = dataclasses.field(default_factory=list)
    #: The lock_timeout the attempt had ("250ms", "its own lock_timeout").
    timeout: str = ""
    #: Why no blocker was seen, when none was.
    unseen: str = "the wait ended before it was sampled"
    # pre-flight
    table: str | None = None
    what: str | None = None
    count: int = 0


@dataclasses.dataclass
class _Unit:
    label: str
    atomic: bool
    #: Statements done so far (of the migration, for a non-atomic one).
    done: int = 0
    #: The migration set lock_timeout itself during this attempt.
    own_lock_timeout: bool = False


@dataclasses.dataclass(frozen=True)
class _Build:
    """A concurrent index build: the table, and the index name when the statement gives one."""

    table: str
    index: str | None
    what: str


class Guard:
    """The deploy guard of one ``migrate`` run on one connection.

    Used as ``with guard.session():`` around the executor's work (session
    settings, the execute wrapper, the watcher's connection), with
    :meth:`run_atomic` / :meth:`run_non_atomic` around each migration.
    """

    def __init__(
        self,
        settings: GuardSettings,
        connection: Any,
        *,
        before_log: Callable[[], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.schedule = settings.schedule
        self.connection = connection
        self._before_log = before_log
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._watch: BlockerWatch | None = None
        self._unit: _Unit | None = None
        self._failure: Failure | None = None
        #: The lock_timeout this guard last set (ms), None when it sets none.
        self._timeout_ms: int | None = None
        #: The session's lock_timeout is _timeout_ms (False once a migration set its own).
        self._known = False
        #: The unit being paused for, while a pause lasts.
        self.pausing: str | None = None
        #: The unit whose pause an exception (a signal) ended, for the command's message.
        self.interrupted_pause: str | None = None
        #: INVALID indexes a failed build left that could not be dropped yet (during a pause).
        self.pending_invalid: list[str] = []
        #: Those of them when a signal ended the pause.
        self.interrupted_invalid: list[str] = []

    # -- session ----------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Session settings for the run, the execute wrapper, and their undoing."""
        conn = self.connection
        conn.ensure_connection()
        running.register(self)
        names = ["lock_timeout", "statement_timeout"]
        transaction_timeout = self.settings.transaction_timeout_ms is not None
        if transaction_timeout:
            version = getattr(conn, "pg_version", 0) or 0
            if version >= 170000:
                names.append("transaction_timeout")
            else:
                transaction_timeout = False
                self._log(
                    messages.TRANSACTION_TIMEOUT_UNSUPPORTED,
                    version=f"{version // 10000}.{version % 10000}",
                )
        saved = {name: self._get(name) for name in names}
        try:
            if self.settings.statement_timeout_ms is not None:
                self._set("statement_timeout", format_ms(self.settings.statement_timeout_ms))
            if transaction_timeout and self.settings.transaction_timeout_ms is not None:
                self._set("transaction_timeout", format_ms(self.settings.transaction_timeout_ms))
            self._set_lock_timeout(self._ceiling())
            watch = self._watcher()
            if watch is not None:
                watch.start()
            with conn.execute_wrapper(self):
                yield
        finally:
            if self._watch is not None:
                self._watch.close()
                self._watch = None
            with contextlib.suppress(Exception):  # a connection the server ended stays ended
                if not conn.in_atomic_block:
                    for name, value in saved.items():
                        self._set(name, value)

    # -- units ------------------------------------------------------------------------
    def run_atomic(self, label: str, body: Callable[[], T]) -> T:
        """Run ``body`` (one transaction) until it gets its locks: 1 + lock_retries tries."""
        parent = self._unit
        unit = _Unit(label, atomic=True)
        done_before = parent.done if parent else 0
        schedule = self.schedule
        self._unit = unit
        try:
            for attempt in range(schedule.attempts):
                self._set_lock_timeout(schedule.timeout_ms(attempt))
                self._failure = None
                unit.own_lock_timeout = False
                if parent is not None:
                    parent.done = done_before
                error: BaseException
                try:
                    result = body()
                except GuardStop:
                    raise
                except PreflightBlocked as exc:
                    error = exc
                except Exception as exc:
                    if self._failure is None:
                        raise
                    if self._failure.kind in FATAL:
                        raise self._fatal(label, unit.done + 1, atomic=True) from exc
                    error = exc
                else:
                    if attempt:
                        self._log(
                            messages.APPLIED_AFTER_RETRY,
                            unit=label,
                            attempt=attempt + 1,
                            attempts=schedule.attempts,
                        )
                    return result
                failure = self._failure
                assert failure is not None
                self._failure = None
                self._report(label, failure, attempt)
                if attempt + 1 == schedule.attempts:
                    raise LockRetriesExhausted(
                        messages.GAVE_UP_ATOMIC.format(
                            unit=label, attempts=schedule.attempts, retries=schedule.retries
                        )
                    ) from error
                self._pause(
                    label,
                    attempt + 1,
                    messages.RETRY_ATOMIC,
                    unit=label,
                )
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            self._unit = parent
            self._restore_lock_timeout(self.schedule.timeout_ms(0) if parent else self._ceiling())

    def run_non_atomic(self, label: str, body: Callable[[], T]) -> T:
        """Run a non-atomic migration: its statements are retried one by one, in place."""
        parent = self._unit
        unit = _Unit(label, atomic=False)
        self._unit = unit
        self._failure = None
        self._set_lock_timeout(self.schedule.timeout_ms(0))
        try:
            return body()
        except GuardStop:
            raise
        except Exception as exc:
            failure = self._failure
            if failure is None:
                raise
            if failure.kind in FATAL:
                raise self._fatal(label, unit.done + 1, atomic=False) from exc
            self._failure = None
            self._report(label, failure, 0, attempts=1)
            raise LockTimeoutNotRetried(
                messages.NOT_RETRIED.format(unit=label, done=unit.done)
            ) from exc
        finally:
            self._unit = parent
            self._restore_lock_timeout(self._ceiling())

    # -- the execute wrapper ----------------------------------------------------------
    def __call__(self, execute: Any, sql: Any, params: Any, many: bool, context: Any) -> Any:
        unit = self._unit
        if unit is None:
            return execute(sql, params, many, context)
        text = str(sql)
        if _SETS_LOCK_TIMEOUT.match(text):
            unit.own_lock_timeout = True
            self._known = False
        if not unit.atomic and not self.connection.in_atomic_block and not self._in_transaction():
            return self._statement(unit, text, execute, sql, params, many, context)
        if self.settings.preflight_age_s is not None:
            failure = self._preflight(text)
            if failure is not None:
                self._failure = failure
                raise PreflightBlocked(failure.table)
        result = self._watched(text, lambda: execute(sql, params, many, context))
        unit.done += 1
        return result

    def _statement(
        self,
        unit: _Unit,
        text: str,
        execute: Any,
        sql: Any,
        params: Any,
        many: bool,
        context: Any,
    ) -> Any:
        """One statement of a non-atomic migration, outside any transaction: retried in place.

        For a concurrent index build, INVALID indexes are dropped before each attempt:
        one of the statement's name an earlier deploy left, and those a failed attempt
        left (tried at once, and before the next attempt when a lock stops the drop).
        """
        index = unit.done + 1
        label = unit.label
        build = self._concurrent_build(text)
        pending: set[tuple[str, str]] = set()
        why = "an earlier build that failed or was interrupted"
        if build is not None and build.index is not None:
            pending = {i for i in self._invalid_indexes(build.table) if i[1] == build.index}
        schedule = self.schedule
        saved: str | None = None
        try:
            for attempt in range(schedule.attempts):
                if attempt:
                    if saved is None:
                        saved = self._get("lock_timeout")
                    self._set_lock_timeout(schedule.timeout_ms(attempt))
                    unit.own_lock_timeout = False
                self._failure = None
                failure: Failure | None = None
                error: BaseException | None = None
                reported = False
                if build is not None and pending:
                    pending, failure = self._drop_invalid(build, pending, why, False)
                if failure is None and self.settings.preflight_age_s is not None:
                    failure = self._preflight(text)
                if failure is None:
                    before = self._invalid_indexes(build.table) if build is not None else set()
                    try:
                        result = self._watched(text, lambda: execute(sql, params, many, context))
                    except Exception as exc:
                        failure = self._failure
                        if failure is None:
                            raise
                        if build is not None and failure.kind != TRANSACTION_TIMEOUT:
                            if failure.kind == LOCK:
                                self._report(f"{label} statement {index}", failure, attempt)
                                reported = True
                            why = f"the failed {build.what}"
                            pending, _ = self._drop_invalid(
                                build, self._invalid_indexes(build.table) - before, why, True
                            )
                        self._failure = failure
                        if failure.kind in FATAL:
                            raise self._fatal(label, index, atomic=False) from exc
                        error = exc
                    else:
                        unit.done += 1
                        self._failure = None
                        if attempt:
                            self._log(
                                messages.APPLIED_AFTER_RETRY,
                                unit=f"{label} statement {index}",
                                attempt=attempt + 1,
                                attempts=schedule.attempts,
                            )
                        return result
                self._failure = None
                if not reported:
                    self._report(f"{label} statement {index}", failure, attempt)
                if attempt + 1 == schedule.attempts:
                    raise LockRetriesExhausted(
                        messages.GAVE_UP_STATEMENT.format(
                            unit=label,
                            index=index,
                            attempts=schedule.attempts,
                            retries=schedule.retries,
                            done=unit.done,
                        )
                        + self._left_invalid(pending)
                    ) from error
                self.pending_invalid = sorted(name for _, name in pending)
                try:
                    self._pause(
                        label,
                        attempt + 1,
                        messages.RETRY_STATEMENT,
                        unit=label,
                        index=index,
                        done=unit.done,
                    )
                finally:
                    self.pending_invalid = []
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            if saved is not None:
                self._restore_setting("lock_timeout", saved)
                try:
                    self._timeout_ms, self._known = round(duration_ms(saved)), True
                except ValueError:
                    self._known = False

    def _watched(self, text: str, send: Callable[[], T]) -> T:
        """``send()`` while the watcher samples who blocks it; a failure is classified."""
        watch = self._watcher()
        if watch is not None:
            pid = self._backend_pid()
            if pid is not None:
                interval = (self._timeout_ms or 4000) / 4 / 1000
                watch.arm(pid, interval)
        started = time.monotonic()
        try:
            return send()
        except Exception as exc:
            blockers = watch.disarm() if watch is not None else []
            failure = self._classify(exc, text, blockers, time.monotonic() - started)
            if failure is not None:
                self._failure = failure
            raise
        except BaseException:  # a signal (SIGTERM, SIGHUP) while the statement runs
            self._cancel_in_flight()
            raise
        finally:
            if watch is not None:
                watch.disarm()

    def _cancel_in_flight(self) -> None:
        """Take a statement a signal interrupted out of the server, and its lock request
        out of the queue: a backend waiting for a lock does not notice that its client
        has gone, and would keep traffic queued behind it until lock_timeout."""
        raw = self.connection.connection
        info = getattr(raw, "info", None)
        if raw is None or info is None or not info.transaction_status:  # 0: IDLE
            return
        with shielded(), contextlib.suppress(Exception):
            raw.cancel()
            raw.close()  # the server rolls back what the session had open

    def _classify(
        self, exc: BaseException, text: str, blockers: list[Blocker], elapsed_s: float
    ) -> Failure | None:
        code = sqlstate(exc)
        statement = mask_query(text, STATEMENT_CHARS)
        if code == LOCK_NOT_AVAILABLE:
            unit = self._unit
            if unit is not None and unit.own_lock_timeout:
                timeout = "its own lock_timeout"
            elif self._timeout_ms is not None:
                timeout = format_ms(self._timeout_ms)
            else:
                timeout = "its lock_timeout"
            unseen = "the wait ended before it was sampled"
            if self._watch is not None and self._watch.unavailable:
                unseen = f"the watcher could not connect: {self._watch.unavailable}"
            elif self._watch is None:
                unseen = "blocker_report is off"
            return Failure(LOCK, statement, blockers, timeout, unseen)
        limit = self.settings.statement_timeout_ms
        if code == QUERY_CANCELED and limit is not None and elapsed_s * 1000 >= 0.9 * limit:
            return Failure(STATEMENT_TIMEOUT, statement, blockers, format_ms(limit))
        limit = self.settings.transaction_timeout_ms
        if code == TRANSACTION_TIMEOUT_CODE and limit is not None:
            return Failure(TRANSACTION_TIMEOUT, statement, blockers, format_ms(limit))
        return None

    # -- pre-flight -------------------------------------------------------------------
    def _preflight(self, text: str) -> Failure | None:
        """Old transactions holding locks the statement's blocking lock would queue behind."""
        age = self.settings.preflight_age_s
        if age is None or _NEVER_BLOCKING.match(text):
            return None
        for facts in sqlfacts.parse(text):
            op_table = None
            if facts.kind == sqlfacts.DROP_INDEX and facts.index and not facts.concurrently:
                rows = self._query(INDEX_TABLE_SQL, [facts.index])
                op_table = str(rows[0][0]) if rows else None
            for table, mode, what in statement_locks(facts, op_table):
                if lockmodes.blocks(mode) is Blocks.NOTHING:
                    continue
                rows = self._query(OLD_HOLDERS_SQL, [table, age])
                pids = sorted(
                    {
                        int(pid)
                        for pid, held in rows
                        if held in lockmodes.MODES and lockmodes.conflicts(mode, held)
                    }
                )
                if not pids:
                    continue
                blockers = (
                    [Blocker.from_row(row) for row in self._query(ACTIVITY_SQL, [pids])]
                    if self.settings.blocker_report
                    else []
                )
                return Failure(
                    PREFLIGHT,
                    mask_query(text, STATEMENT_CHARS),
                    blockers,
                    unseen="blocker_report is off",
                    table=table,
                    what=what,
                    count=len(pids),
                )
        return None

    # -- INVALID indexes --------------------------------------------------------------
    def _concurrent_build(self, text: str) -> _Build | None:
        if not _CONCURRENTLY.search(text):
            return None
        for facts in sqlfacts.parse(text):
            if facts.kind == sqlfacts.CREATE_INDEX and facts.concurrently and facts.table:
                return _Build(facts.table, facts.index, "CREATE INDEX CONCURRENTLY")
            if facts.kind == sqlfacts.REINDEX and facts.concurrently:
                table = facts.table if facts.target == "TABLE" else None
                if facts.target == "INDEX" and facts.index:
                    rows = self._query(INDEX_TABLE_SQL, [facts.index])
                    table = str(rows[0][0]) if rows else None
                if table:
                    return _Build(table, None, "REINDEX CONCURRENTLY")
        return None

    def _invalid_indexes(self, table: str) -> set[tuple[str, str]]:
        return {(str(s), str(n)) for s, n in self._query(INVALID_INDEXES_SQL, [table])}

    def _drop_invalid(
        self, build: _Build, targets: set[tuple[str, str]], why: str, say_failure: bool
    ) -> tuple[set[tuple[str, str]], Failure | None]:
        """Drop the INVALID indexes ``targets`` ((schema, name) pairs) concurrently.

        Returns those left (a lock stopped the drop: DROP INDEX CONCURRENTLY waits for
        every transaction holding a lock on the table) and that lock timeout, which the
        caller reports (``say_failure``: a line of its own says the index is left).
        """
        left: set[tuple[str, str]] = set()
        failure: Failure | None = None
        for schema, name in sorted(targets):
            statement = pgsql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                pgsql.Identifier(schema, name)
            )
            self._failure = None

            def drop(statement: pgsql.Composed = statement) -> list[Any]:
                return self._query(statement)

            try:
                with shielded():  # a signal now would leave the index half-dropped
                    self._watched(f"DROP INDEX CONCURRENTLY IF EXISTS {name}", drop)
            except Exception as exc:
                if self._failure is None or self._failure.kind != LOCK:
                    raise
                failure = failure or self._failure
                self._failure = None
                left.add((schema, name))
                if say_failure:
                    self._log(
                        messages.DROP_INVALID_FAILED,
                        index=name,
                        table=build.table,
                        error=mask_query(str(exc), STATEMENT_CHARS),
                    )
            else:
                self._log(messages.DROPPED_INVALID, index=name, table=build.table, why=why)
        return left, failure

    def _left_invalid(self, pending: set[tuple[str, str]]) -> str:
        if not pending:
            return ""
        names = ", ".join(name for _, name in sorted(pending))
        return " " + messages.INVALID_LEFT.format(names=names)

    # -- reporting and pausing --------------------------------------------------------
    def _report(
        self, label: str, failure: Failure, attempt: int, attempts: int | None = None
    ) -> None:
        attempts = attempts or self.schedule.attempts
        if failure.kind == PREFLIGHT:
            age = self.settings.preflight_age_s or 0
            self._log(
                messages.PREFLIGHT,
                unit=label,
                what=failure.what,
                count=failure.count,
                age=format_age(age),
                table=failure.table,
                attempt=attempt + 1,
                attempts=attempts,
            )
        else:
            self._log(
                messages.LOCK_TIMEOUT,
                unit=label,
                timeout=failure.timeout,
                attempt=attempt + 1,
                attempts=attempts,
                statement=failure.statement,
            )
        if failure.blockers:
            for blocker in failure.blockers:
                self._log(messages.BLOCKED_BY, blocker=blocker.describe())
        elif self.settings.blocker_report:
            self._log(messages.BLOCKED_BY_UNKNOWN, why=failure.unseen)

    def _pause(self, label: str, retry: int, template: str, **values: Any) -> None:
        seconds = self.schedule.pause_s(retry, self._rng)
        timeout = self.schedule.timeout_ms(retry)
        self._log(
            template,
            pause=format_ms(seconds * 1000),
            timeout=format_ms(timeout) if timeout is not None else "unchanged",
            attempt=retry + 1,
            attempts=self.schedule.attempts,
            **values,
        )
        self.pausing = label
        try:
            self._sleep(seconds)
        except BaseException:
            self.interrupted_pause = label
            self.interrupted_invalid = list(self.pending_invalid)
            raise
        finally:
            self.pausing = None

    def _fatal(self, label: str, index: int, *, atomic: bool) -> GuardStop:
        """The error that ends migrate after statement_timeout or transaction_timeout."""
        failure = self._failure
        assert failure is not None
        self._failure = None
        if failure.kind == TRANSACTION_TIMEOUT:
            return TransactionTimedOut(
                messages.TRANSACTION_TIMEOUT_ENDED.format(
                    unit=label,
                    timeout=failure.timeout,
                    undone=messages.UNDONE_ATOMIC if atomic else messages.UNDONE_NON_ATOMIC,
                )
            )
        return StatementTimedOut(
            messages.STATEMENT_TIMEOUT.format(
                unit=label,
                index=index,
                timeout=failure.timeout,
                statement=failure.statement,
                undone=messages.UNDONE_ATOMIC if atomic else messages.UNDONE_NON_ATOMIC,
            )
        )

    def _log(self, template: str, **values: Any) -> None:
        if self._before_log is not None:
            self._before_log()
        log.warning(template.format(**values))

    # -- the connection ---------------------------------------------------------------
    def _ceiling(self) -> int | None:
        return self.schedule.timeout_ms(self.schedule.retries)

    def _watcher(self) -> BlockerWatch | None:
        if not self.settings.blocker_report:
            return None
        if self._watch is None:
            self._watch = BlockerWatch(self._connect_watcher)
        return self._watch

    def _connect_watcher(self) -> Any:
        """A second connection with the same parameters, in autocommit, named for DBAs."""
        conn = self.connection
        raw = conn.Database.connect(**conn.get_connection_params())
        raw.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('application_name', %s, false), "
                "set_config('statement_timeout', '5s', false), "
                "set_config('lock_timeout', '1s', false)",
                [WATCHER_APPLICATION_NAME],
            )
        return raw

    def _backend_pid(self) -> int | None:
        raw = self.connection.connection
        info = getattr(raw, "info", None)
        pid = getattr(info, "backend_pid", None)
        if pid is None and hasattr(raw, "get_backend_pid"):  # psycopg2
            pid = raw.get_backend_pid()
        return int(pid) if pid else None

    def _in_transaction(self) -> bool:
        """A transaction is open on the server (a BEGIN Django does not know about)."""
        raw = self.connection.connection
        info = getattr(raw, "info", None)
        status = getattr(info, "transaction_status", None)
        if status is None and hasattr(raw, "get_transaction_status"):  # psycopg2
            status = raw.get_transaction_status()
        return bool(status)  # IDLE is 0; ACTIVE, INTRANS, INERROR are not

    def _query(self, statement: Any, params: Any = None) -> list[Any]:
        """Run one of the guard's own statements on the migrating connection (no wrappers)."""
        with self.connection.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    def _restore_setting(self, name: str, value: str) -> None:
        try:
            self._set(name, value)
        except Exception as exc:  # the session ended (transaction_timeout)
            log.debug("%s not restored: %s", name, exc)

    def _get(self, name: str) -> str:
        rows = self._query("SELECT current_setting(%s)", [name])
        return str(rows[0][0])

    def _set(self, name: str, value: str) -> None:
        self._query("SELECT set_config(%s, %s, false)", [name, value])

    def _set_lock_timeout(self, ms: int | None) -> None:
        if ms is None or (self._known and ms == self._timeout_ms):
            return  # the session has it already: no round trip
        self._set("lock_timeout", f"{ms}ms")
        self._timeout_ms = ms
        self._known = True

    def _restore_lock_timeout(self, ms: int | None) -> None:
        """Set lock_timeout on the way out of a unit, unless the unit's failure left no way."""
        if self.connection.connection is None:
            return
        try:
            self._set_lock_timeout(ms)
        except Exception as exc:  # an aborted transaction of the migration's own, a dead session
            log.debug("lock_timeout not restored: %s", exc)
