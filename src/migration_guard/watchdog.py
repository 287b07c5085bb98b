"""A time limit per migration, and a heartbeat while one runs.

An audited migration is untrusted code: ``RunPython`` with ``while True``, or
``RunSQL("SELECT pg_sleep(100000)")``, would otherwise hang the audit until
something outside kills it (a GitHub job waits six hours). Each migration the
audit applies runs under :meth:`Watchdog.limit`:

* SQL: the migration connection's ``statement_timeout`` is the limit, and when
  the limit passes the statement running is cancelled (``pg_cancel_backend``'s
  protocol message, from the watchdog thread);
* Python: when the limit passes, :class:`MigrationTimeout` is raised in the
  audit's thread (an asynchronous exception, which ``while True`` loops receive
  at their next bytecode; in the main thread a SIGALRM also interrupts a
  blocking ``time.sleep``). It derives from ``BaseException`` so that an
  ``except Exception`` of the migration does not swallow it. The limit keeps
  firing every second until the migration gives up control;
* code that swallows even that for :data:`HARD_STOP_AFTER` seconds ends the
  audit (exit 2): the server dies with it (parent-death signal) and its folder
  is removed by the next run.

The migration is then reported as failed, with a ``migration-timeout`` finding
naming the operation that was running. Every :data:`HEARTBEAT` seconds the
migration still running is named on stderr (through the ``progress``
callback), so a long audit never looks hung in a CI log.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .djangodb import cancel_query

log = logging.getLogger(__name__)

#: Seconds between heartbeats (``MIGRATION_GUARD_HEARTBEAT_SECONDS`` overrides it).
HEARTBEAT = 30.0
HEARTBEAT_ENV = "MIGRATION_GUARD_HEARTBEAT_SECONDS"
#: Seconds after the limit before an audit whose migration will not stop is ended.
HARD_STOP_AFTER = 30.0
_SQLSTATE_CANCELED = "57014"

Progress = Callable[[str, dict[str, Any]], None]


class MigrationTimeout(BaseException):
    """Raised in the audit's thread when a migration runs past its time limit."""


class MigrationTimedOut(Exception):
    """The migration ran past its time limit and was stopped (the message says where)."""


def heartbeat_seconds() -> float:
    value = os.environ.get(HEARTBEAT_ENV, "").strip()
    try:
        return max(0.2, float(value)) if value else HEARTBEAT
    except ValueError:
        return HEARTBEAT


def format_seconds(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class Watchdog:
    """Limits each migration to ``seconds`` (0: no limit) and reports progress."""

    def __init__(self, seconds: float, progress: Progress, connection: Callable[[], Any]) -> None:
        self.seconds = float(seconds or 0)
        self.progress = progress
        #: The Django connection the migrations run on.
        self._connection = connection

    @contextlib.contextmanager
    def limit(self, key: tuple[str, str], migration: Any, record: Any = None) -> Iterator[None]:
        """Run the block (applying ``migration``) under the limit.

        On timeout, raises :class:`MigrationTimedOut`; ``record`` (a
        ``collect.MigrationRecord``), when given, is marked timed out with the
        operation that was running.
        """
        self._set_statement_timeout()
        timer = _Timer(self, key, migration, threading.get_ident())
        previous = _install_alarm(timer)
        timer.start()
        outcome: BaseException | None = None
        try:
            yield
        except BaseException as exc:
            outcome = exc
        finally:
            # A MigrationTimeout sent just as the block ended may still arrive here:
            # the clean-up goes on until it is done, then nothing is pending.
            while True:
                try:
                    timer.stop()
                    _restore_alarm(previous)
                    if timer.fired:
                        _deliver_pending()
                    break
                except MigrationTimeout:
                    continue
        if outcome is None:
            return
        if not (timer.fired or _statement_timeout(outcome)):
            raise outcome
        message = self._message(timer, record)
        if record is not None:
            record.timed_out = True
            record.error = message
            if timer.operation is not None and record.error_op is None:
                record.error_op = timer.operation
        raise MigrationTimedOut(message) from None

    def _message(self, timer: _Timer, record: Any) -> str:
        index = timer.operation
        if index is None and record is not None:
            index = record.error_op
        where = ""
        if index is not None:
            ops = getattr(timer.migration, "operations", [])
            kind = type(ops[index]).__name__ if index < len(ops) else "operation"
            where = f" in operations[{index}] ({kind})"
        return (
            f"the migration ran longer than {format_seconds(self.seconds)} (--migration-timeout)"
            f"{where} and was stopped"
        )

    def _set_statement_timeout(self) -> None:
        if not self.seconds:
            return
        connection = self._connection()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, false)",
                [f"{int(self.seconds * 1000)}ms"],
            )

    def _cancel_sql(self) -> None:
        cancel_query(self._connection())


class _Timer(threading.Thread):
    def __init__(
        self, watchdog: Watchdog, key: tuple[str, str], migration: Any, target: int
    ) -> None:
        super().__init__(name=f"migration-guard watchdog {key[0]}.{key[1]}", daemon=True)
        self.watchdog = watchdog
        self.key = key
        self.migration = migration
        self.target = target
        self.started = time.monotonic()
        self.done = threading.Event()
        self.fired = False
        #: Index of the operation that was running when the limit passed.
        self.operation: int | None = None

    def stop(self) -> None:
        self.done.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=5)

    def run(self) -> None:
        beat = heartbeat_seconds()
        next_beat = self.started + beat
        limit = self.watchdog.seconds
        deadline = self.started + limit if limit else None
        while True:
            now = time.monotonic()
            wake = next_beat if deadline is None or self.fired else min(next_beat, deadline)
            if self.fired:
                wake = min(wake, now + 1.0)
            if self.done.wait(timeout=max(0.0, wake - now)):
                return
            now = time.monotonic()
            if now >= next_beat:
                next_beat = now + beat
                with contextlib.suppress(Exception):
                    self.watchdog.progress(
                        "running", {"key": self.key, "elapsed": now - self.started}
                    )
            if deadline is not None and now >= deadline:
                if not self.fired:
                    self.fired = True
                    self.operation = _running_operation(self.target, self.migration)
                if now >= deadline + HARD_STOP_AFTER:
                    self._hard_stop()
                    return
                self._interrupt()

    def _interrupt(self) -> None:
        self.watchdog._cancel_sql()
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self.target), ctypes.py_object(MigrationTimeout)
        )
        if self.target == threading.main_thread().ident and _ALARM_INSTALLED.is_set():
            with contextlib.suppress(Exception):
                signal.pthread_kill(self.target, signal.SIGALRM)

    def _hard_stop(self) -> None:
        key = f"{self.key[0]}.{self.key[1]}"
        message = (
            f"migration_guard: {key} ran longer than "
            f"{format_seconds(self.watchdog.seconds)} (--migration-timeout) and does not stop "
            "when interrupted; the audit ends here (exit 2). Its throwaway server stops with "
            "it; a scratch database on a --database-url server is left, named with this "
            f"process id ({os.getpid()}).\n"
        )
        with contextlib.suppress(Exception):
            sys.stderr.write(message)
            sys.stderr.flush()
        os._exit(2)


def _running_operation(thread_id: int, migration: Any) -> int | None:
    """Index of the migration's operation the thread is inside (from its stack)."""
    frame = sys._current_frames().get(thread_id)
    operations = list(getattr(migration, "operations", []))
    found: int | None = None
    while frame is not None:
        candidate = frame.f_locals.get("self")
        for index, op in enumerate(operations):
            if candidate is op:
                found = index  # keep going: the outermost one is the migration's own
        frame = frame.f_back
    return found


def _statement_timeout(exc: BaseException) -> bool:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if getattr(cause, "sqlstate", None) == _SQLSTATE_CANCELED and "statement timeout" in str(
            cause
        ):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


_ALARM_INSTALLED = threading.Event()


def _deliver_pending() -> None:
    """Let an asynchronous exception sent to this thread arrive here, now.

    The timer has stopped, so at most one is on its way; the interpreter hands
    it over at the next loop iteration. (Clearing it with
    ``PyThreadState_SetAsyncExc(id, NULL)`` instead would leave the
    interpreter's eval breaker set for good: every later bytecode would take
    the slow path, which made whole audits several times slower.)
    """
    for _ in range(64):
        pass


def _install_alarm(timer: _Timer) -> Any:
    """In the main thread, a SIGALRM handler that raises once the limit has passed."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_alarm(signum: int, frame: Any) -> None:
        if timer.fired and not timer.done.is_set():
            raise MigrationTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    _ALARM_INSTALLED.set()
    return (previous,)


def _restore_alarm(previous: Any) -> None:
    if previous is None:
        return
    _ALARM_INSTALLED.clear()
    signal.signal(signal.SIGALRM, previous[0])
