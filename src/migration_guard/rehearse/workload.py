"""The previous release's traffic: its queries, on connections of their own, at a set rate.

For each table a migration touches, the model of the state *before the change*
(the code still serving requests during the deploy) sends five kinds of
queries through Django's ORM, as that code does:

* ``select-pk``: ``Model.objects.filter(pk=...)``, every column the model knows;
* ``select-filtered``: by a foreign key (or a primary-key range), 20 rows;
* ``insert``: ``bulk_create`` of one new row, naming only the columns the model
  knows (values from :mod:`.values`);
* ``update``: one row, every column the model knows (unique ones set to
  themselves, so nothing collides);
* ``delete``: by a key no row has, one statement, no cascade.

Each query is one statement in its own transaction. The writes' transactions
are rolled back, not committed: they take the same locks, wait as long and
fail with the same errors (``SET CONSTRAINTS ALL IMMEDIATE`` first, so that
Django's deferred foreign keys are checked by the statement itself), but
nothing the workload makes up stays in the tables. Committed, a made-up
value could break the change itself (an UPDATE giving two rows the same pair
of parents before a unique constraint over them is built) and the audit would
report a migration failure of its own making. One statement can still
take two locks (an INSERT locks the table, then its foreign key's check reads
the parent table): held while waiting for the migration, the first can
make the migration wait in turn, a deadlock PostgreSQL breaks by cancelling
one of them, after ``deadlock_timeout`` (1 s). So that it is never the
migration, each attempt of a query gives up after :data:`ATTEMPT_LOCK_TIMEOUT`
and is sent again, as an application retries: its locks are released well
before PostgreSQL looks for a deadlock, and the query's wait is the time from
its first attempt to its answer. ``statement_timeout`` keeps anything from
running forever.

A :class:`Pool` keeps a few worker threads, each with its own Django
connection, for the whole audit. For each migration a :class:`Round` hands
them the queries: once each before the migration (what already fails then is
not the migration's doing), then over and over at the configured rate while
it runs, then once each right after it committed (a renamed column fails
only then). Every query's time and PostgreSQL's error, if any, is recorded
as a :class:`Sample`.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import NOT_PROVIDED, F

from ..djangodb import cancel_query
from .values import NoValue, Values, is_unique, skipped

log = logging.getLogger(__name__)

APPLICATION_NAME = "migration-guard-rehearsal"
#: One attempt of a query waits this long for a lock, then is sent again: well under
#: PostgreSQL's deadlock_timeout (1 s), so a cycle with the migration breaks on our side.
ATTEMPT_LOCK_TIMEOUT = "200ms"
STATEMENT_TIMEOUT = "60s"
#: A query still waiting after this many seconds gives up (counted as a wait).
GIVE_UP_SECONDS = 60.0
SESSION_OPTIONS = (
    f"-c lock_timeout={ATTEMPT_LOCK_TIMEOUT} -c statement_timeout={STATEMENT_TIMEOUT} "
    "-c idle_in_transaction_session_timeout=60s"
)
#: SQLSTATEs after which an attempt is sent again: lock_timeout, a deadlock.
RETRIED = frozenset({"55P03", "40P01"})
#: Rows the filtered SELECT reads, keys sampled per table.
PAGE = 20
SAMPLE_KEYS = 256

#: The kinds that write: sent in a transaction that is rolled back.
WRITES = frozenset({"insert", "update", "delete"})

BEFORE = "before"
DURING = "during"
AFTER = "after"

#: A unique violation: the workload's generated values collided with existing rows (a
#: pair of foreign keys a new unique constraint covers, say). What it writes is made up,
#: so a duplicate says nothing about the previous release: not counted, but noted.
DUPLICATE = "23505"

#: SQLSTATEs of a query that gave up waiting (after :data:`GIVE_UP_SECONDS`), or was
#: cancelled. Counted as waits, not failures.
GAVE_UP = frozenset({"55P03", "57014", "40P01"})


@dataclasses.dataclass(frozen=True)
class Sample:
    table: str
    kind: str
    phase: str
    #: ``time.monotonic()`` when the query was sent, and seconds until it was answered.
    started: float
    elapsed: float
    #: PostgreSQL's error ("ERROR: ... (SQLSTATE ...)"), or a Python error's text.
    error: str | None = None
    sqlstate: str | None = None
    #: The error came from PostgreSQL (else from Python: the workload's own trouble).
    database: bool = True

    @property
    def gave_up(self) -> bool:
        return self.sqlstate in GAVE_UP

    @property
    def duplicate(self) -> bool:
        return self.sqlstate == DUPLICATE

    @property
    def failed(self) -> bool:
        return self.error is not None and self.database and not self.gave_up and not self.duplicate


def error_text(exc: BaseException) -> tuple[str, str | None]:
    """PostgreSQL's primary message with its SQLSTATE (no DETAIL: it quotes row values)."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        diag = getattr(cause, "diag", None)
        primary = getattr(diag, "message_primary", None) if diag is not None else None
        if primary:
            state = getattr(diag, "sqlstate", None)
            severity = getattr(diag, "severity", None) or "ERROR"
            suffix = f" (SQLSTATE {state})" if state else ""
            return f"{severity}: {primary}{suffix}", state
        cause = cause.__cause__ or cause.__context__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text, getattr(exc, "sqlstate", None)


# --- what to send --------------------------------------------------------------------------


@dataclasses.dataclass
class ModelPlan:
    """One model of the previous release and what its queries need."""

    model: Any
    table: str
    rows: int
    #: Primary keys of existing rows (for SELECT and UPDATE).
    pks: list[Any]
    #: Foreign key field name -> keys of existing rows of the table it points to.
    parents: dict[str, list[Any]]
    kinds: list[str]
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def meta(self) -> Any:
        return self.model._meta


@dataclasses.dataclass(frozen=True)
class Item:
    """One kind of query on one model: what a worker sends, over and over."""

    plan: ModelPlan
    kind: str

    @property
    def table(self) -> str:
        return self.plan.table


class Queries:
    """The ORM calls of one worker (its own values and random numbers)."""

    def __init__(self, alias: str, number: int) -> None:
        self.alias = alias
        self.rng = random.Random(number * 7919 + 17)
        self.values = Values(self.rng, f"rh{number}")

    def manager(self, model: Any) -> Any:
        return model._base_manager.db_manager(self.alias)

    def run(self, item: Item) -> None:
        send = getattr(self, item.kind.replace("-", "_"))
        if item.kind not in WRITES:
            send(item.plan)
            return
        # Sent as the previous release sends it, then rolled back: see the module's doc.
        with transaction.atomic(using=self.alias):
            with transaction.get_connection(self.alias).cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            send(item.plan)
            transaction.set_rollback(True, using=self.alias)

    # -- the five kinds ---------------------------------------------------------------
    def key(self, plan: ModelPlan) -> Any:
        """An existing row's key (one that matches nothing when the table is empty)."""
        return self.rng.choice(plan.pks) if plan.pks else _absent_key(plan.meta.pk)

    def select_pk(self, plan: ModelPlan) -> None:
        list(self.manager(plan.model).filter(pk=self.key(plan)))

    def select_filtered(self, plan: ModelPlan) -> None:
        qs = self.manager(plan.model).all()
        name = next(iter(plan.parents), None)
        if name is not None and plan.parents[name]:
            field = plan.meta.get_field(name)
            qs = qs.filter(**{field.attname: self.rng.choice(plan.parents[name])})
        elif plan.pks:
            qs = qs.filter(pk__gte=self.rng.choice(plan.pks)).order_by("pk")
        list(qs[:PAGE])

    def insert(self, plan: ModelPlan) -> None:
        self.manager(plan.model).bulk_create([self.new(plan.model, plan, depth=0)])

    def update(self, plan: ModelPlan) -> None:
        values: dict[str, Any] = {}
        for field in plan.meta.concrete_fields:
            if field.primary_key or skipped(field):
                continue
            if is_unique(field):
                values[field.attname] = F(field.attname)  # named, unchanged: no collision
            elif field.is_relation:
                keys = plan.parents.get(field.name)
                values[field.attname] = self.rng.choice(keys) if keys else F(field.attname)
            else:
                values[field.attname] = self.value(field)
        self.manager(plan.model).filter(pk=self.key(plan)).update(**values)

    def delete(self, plan: ModelPlan) -> None:
        qs = self.manager(plan.model).filter(pk=_absent_key(plan.meta.pk))
        qs._raw_delete(using=self.alias)  # one DELETE: no cascade, nothing held meanwhile

    # -- values ---------------------------------------------------------------------------
    def value(self, field: Any) -> Any:
        default = self.values.default(field)
        if default is not NOT_PROVIDED:
            return default
        return self.values.of_type(field)

    def new(self, model: Any, plan: ModelPlan | None, depth: int) -> Any:
        """An unsaved instance with the values the previous release would give it."""
        kwargs: dict[str, Any] = {}
        for field in model._meta.concrete_fields:
            if skipped(field) or (
                field.primary_key and field.get_internal_type().endswith("AutoField")
            ):
                continue
            if field.is_relation:
                kwargs[field.attname] = self.parent(field, plan, depth)
                continue
            kwargs[field.attname] = self.value(field)
        return model(**kwargs)

    def parent(self, field: Any, plan: ModelPlan | None, depth: int) -> Any:
        """A key for a foreign key: an existing row, or (unique) a new one."""
        keys = plan.parents.get(field.name) if plan is not None else None
        if keys and not is_unique(field):
            return self.rng.choice(keys)
        if field.null and not field.primary_key:
            return None
        if depth >= 2:
            raise NoValue(f"{field.name} needs a new row of {field.related_model.__name__}")
        related = field.related_model
        parent = self.new(related, None, depth + 1)
        self.manager(related).bulk_create([parent])  # rolled back with the row it is for
        return getattr(parent, field.target_field.attname)


def _absent_key(pk: Any) -> Any:
    kind = pk.get_internal_type()
    if kind == "UUIDField":
        import uuid

        return uuid.uuid4()
    if kind in ("CharField", "TextField", "SlugField", "EmailField"):
        return ""
    return -1


def kinds_for(model: Any, parents: dict[str, list[Any]]) -> tuple[list[str], list[str]]:
    """The kinds of query the workload can send for ``model``, and why others not."""
    kinds = ["select-pk", "select-filtered"]
    notes: list[str] = []
    meta = model._meta
    if meta.parents:
        notes.append(f"{meta.db_table}: no INSERT, UPDATE or DELETE (multi-table inheritance)")
        return kinds, notes
    probe = Values(random.Random(0), "probe")
    for field in meta.concrete_fields:
        if skipped(field) or field.is_relation or field.primary_key:
            continue
        if field.has_default():
            continue
        try:
            probe.of_type(field)
        except NoValue as exc:
            notes.append(f"{meta.db_table}: no INSERT or UPDATE ({exc})")
            return [*kinds, "delete"], notes
    return [*kinds, "insert", "update", "delete"], notes


# --- who sends it --------------------------------------------------------------------------


class CountDown:
    """Wait until ``n`` parties are done."""

    def __init__(self, n: int) -> None:
        self._left = n
        self._cond = threading.Condition()

    def done(self) -> None:
        with self._cond:
            self._left -= 1
            self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._left <= 0, timeout=timeout)


class Round:
    """The traffic of one migration: before it, while it runs, right after it."""

    def __init__(self, items: Sequence[Sequence[Item]], interval: float) -> None:
        self.items = [list(x) for x in items]
        self.interval = interval
        self.go = threading.Event()
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.warmed = CountDown(len(self.items))
        self.finished = CountDown(len(self.items))
        self.samples: list[Sample] = []

    def run(self, worker: Worker) -> None:
        mine = self.items[worker.number]
        try:
            for item in mine:
                if self.abort.is_set():
                    break
                worker.send(item, BEFORE, self)
        finally:
            self.warmed.done()
        try:
            while not (self.go.wait(0.5) or self.abort.is_set() or self.stop.is_set()):
                pass
            if mine and not self.abort.is_set():
                self._paced(worker, mine)
            if not self.abort.is_set():
                for item in mine:
                    if self.abort.is_set():
                        break
                    worker.send(item, AFTER, self)
        finally:
            self.finished.done()

    def _paced(self, worker: Worker, mine: list[Item]) -> None:
        # workers start at different moments of the interval: queries spread over it
        if self.stop.wait(worker.queries.rng.uniform(0, self.interval)):
            return
        due = time.monotonic()
        index = 0
        while not (self.stop.is_set() or self.abort.is_set()):
            worker.send(mine[index % len(mine)], DURING, self)
            index += 1
            due += self.interval
            delay = due - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                due = time.monotonic()  # it waited: no burst to catch up


class Worker(threading.Thread):
    """One connection of the previous release, in a thread of its own."""

    def __init__(self, pool: Pool, number: int) -> None:
        super().__init__(name=f"migration-guard-rehearsal-{number}", daemon=True)
        self.pool = pool
        self.number = number
        self.tasks: queue.Queue[Round | None] = queue.Queue()
        self.queries = Queries(pool.alias, number)
        self.wrapper: Any = None
        #: The item being sent (read by the lock monitor: which table waits).
        self.current: Item | None = None
        self.ready = threading.Event()

    @property
    def pid(self) -> int | None:
        raw = getattr(self.wrapper, "connection", None)
        try:
            return int(raw.info.backend_pid) if raw is not None else None
        except Exception:
            return None

    def run(self) -> None:
        from django.db import connections

        try:
            self.wrapper = self.pool.new_wrapper()
            connections[self.pool.alias] = self.wrapper  # this thread's connection only
            with contextlib.suppress(Exception):
                self.wrapper.ensure_connection()
            self.ready.set()
            while True:
                task = self.tasks.get()
                if task is None:
                    return
                try:
                    task.run(self)
                except Exception:  # never leave a round waiting for this worker
                    log.exception("rehearsal worker %s failed", self.number)
        finally:
            self.ready.set()
            self._close(connections)

    def _close(self, connections: Any) -> None:
        with contextlib.suppress(Exception):
            if self.wrapper is not None:
                self.wrapper.close()
        with contextlib.suppress(Exception):
            del connections[self.pool.alias]

    def send(self, item: Item, phase: str, into: Round) -> None:
        self.current = item
        started = time.monotonic()
        error = state = None
        database = True
        try:
            while True:
                error = state = None
                try:
                    self.queries.run(item)
                except DatabaseError as exc:
                    error, state = error_text(exc)
                    if (
                        state in RETRIED
                        and time.monotonic() - started < GIVE_UP_SECONDS
                        and not into.abort.is_set()
                    ):
                        continue  # its locks are released: send it again
                    if isinstance(exc, (OperationalError, InterfaceError)) and not _usable(
                        self.wrapper
                    ):
                        with contextlib.suppress(Exception):
                            self.wrapper.close()  # the next query connects again
                break
        except NoValue as exc:
            error, database = str(exc), False
        except Exception as exc:  # ProtectedError, a field the ORM refuses...
            error, database = f"{type(exc).__name__}: {exc}", False
        finally:
            self.current = None
        into.samples.append(
            Sample(
                item.table,
                item.kind,
                phase,
                started,
                time.monotonic() - started,
                error,
                state,
                database,
            )
        )

    def cancel(self) -> None:
        """Cancel the query this worker is waiting for (from another thread)."""
        cancel_query(self.wrapper)


def _usable(wrapper: Any) -> bool:
    try:
        return bool(wrapper.connection is not None and not wrapper.connection.closed)
    except Exception:
        return False


class Pool:
    """The workload's worker threads, started once and closed with the audit."""

    def __init__(self, alias: str, size: int, rate: float, wrapper: Callable[[], Any]) -> None:
        self.alias = alias
        self.size = size
        self.interval = 1.0 / rate
        self.new_wrapper = wrapper
        self.workers: list[Worker] = []
        self.round: Round | None = None
        self.closed = False

    def start(self) -> None:
        if self.workers:
            return
        self.workers = [Worker(self, n) for n in range(self.size)]
        for worker in self.workers:
            worker.start()
        for worker in self.workers:
            worker.ready.wait(timeout=15)

    @property
    def pids(self) -> list[int]:
        return [pid for pid in (w.pid for w in self.workers) if pid is not None]

    def begin(self, items: Sequence[Item]) -> Round:
        """Hand out ``items`` (a mix of kinds and tables per worker) and start the round."""
        self.start()
        shares: list[list[Item]] = [[] for _ in self.workers]
        for index, item in enumerate(items):
            shares[index % len(shares)].append(item)
        current = Round(shares, self.interval)
        self.round = current
        for worker in self.workers:
            worker.tasks.put(current)
        return current

    def end(self, current: Round, *, timeout: float) -> bool:
        """Let the round finish its last queries; False when it did not in time."""
        current.stop.set()
        done = current.finished.wait(timeout)
        if not done:
            self.abort(current)
        self.round = None
        return done

    def abort(self, current: Round | None = None) -> None:
        current = current or self.round
        if current is None:
            return
        current.abort.set()
        current.stop.set()
        current.go.set()
        for worker in self.workers:
            worker.cancel()
        current.finished.wait(5)

    def close(self, terminate: Callable[[list[int]], None] | None = None) -> list[str]:
        """Stop every worker and close its connection; names the ones left behind."""
        if self.closed:
            return []
        self.closed = True
        self.abort()
        pids = self.pids
        for worker in self.workers:
            worker.tasks.put(None)
        deadline = time.monotonic() + 10
        for worker in self.workers:
            worker.join(timeout=max(0.1, deadline - time.monotonic()))
        stuck = [w for w in self.workers if w.is_alive()]
        if stuck and terminate is not None:
            with contextlib.suppress(Exception):
                terminate([pid for pid in pids])
            for worker in stuck:
                worker.join(timeout=5)
        return [w.name for w in self.workers if w.is_alive()]


def django_wrapper(alias: str) -> Any:
    """A new Django connection for ``alias`` with the workload's session settings."""
    from django.db import connections
    from django.db.utils import load_backend

    settings = copy.deepcopy(dict(connections.settings[alias]))
    options = dict(settings.get("OPTIONS") or {})
    options["options"] = f"{options.get('options', '')} {SESSION_OPTIONS}".strip()
    options["application_name"] = APPLICATION_NAME
    settings["OPTIONS"] = options
    backend = load_backend(settings["ENGINE"])
    return backend.DatabaseWrapper(settings, alias)
