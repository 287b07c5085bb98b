"""One audit's rehearsal: what the engine calls, and everything it owns until the end.

The engine asks it for four things, in this order:

1. :meth:`Rehearsal.seeder`: the tables of the change get rows before tracing
   (``rehearse_rows`` each, or sizes derived from ``--stats-url`` scaled down to
   that ceiling);
2. :meth:`Rehearsal.previous_release`, at the start of the change: the project
   state then is the code still serving requests during the deploy;
3. :meth:`Rehearsal.traffic` around each migration it applies: the previous
   release's queries before, during and right after it;
4. :meth:`Rehearsal.result` when it judges the migration: the measurements,
   for the judge to turn into findings and evidence.

:func:`open_rehearsal` closes it whatever happens: every worker thread is
joined and every connection it opened is closed, on an interrupt too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ..exceptions import ConfigurationError
from ..findings import QUERY_WORDS
from ..results import MigrationRehearsal, RehearsalSummary
from ..signals import shielded
from ..trace.seed import Seeder, touched_tables
from . import measure
from .monitor import LockMonitor, LongReads
from .workload import (
    SAMPLE_KEYS,
    Item,
    ModelPlan,
    Pool,
    Round,
    Sample,
    django_wrapper,
    kinds_for,
)

if TYPE_CHECKING:
    from ..collect import MigrationRecord
    from ..conf import Config
    from ..postgres.base import ConnectionInfo
    from ..trace.stats import StatsConnection

log = logging.getLogger(__name__)

CONTROL_NAME = "migration-guard-rehearsal-control"
#: Seconds the workload may take for its first round, and for its last one.
WARM_TIMEOUT = 30.0
END_TIMEOUT = 60.0


def configured_lock_timeout(config: Config, alias: str) -> str | None:
    """The lock_timeout production's ``migrate`` runs with, when the project sets one."""
    if config.lock_timeout:
        return config.lock_timeout
    from ..djangodb import original_settings

    try:
        options = str((original_settings(alias).get("OPTIONS") or {}).get("options", ""))
    except Exception:
        return None
    match = re.search(r"lock_timeout\s*=\s*'?([0-9.]+\s*[a-z]*)", options)
    return match.group(1).replace(" ", "") if match else None


def seed_sizes(stats: StatsConnection, ceiling: int) -> Any:
    """Rows per table from production's counts, scaled so the largest gets ``ceiling``."""

    def sizes(names: list[str]) -> dict[str, int]:
        production = {name: stats.table(name) for name in names}
        known = {name: t.rows for name, t in production.items() if t is not None}
        top = max(known.values(), default=0)
        factor = min(1.0, ceiling / top) if top else 1.0
        return {
            name: (max(1, round(known[name] * factor)) if known[name] else 0)
            if name in known
            else ceiling
            for name in names
        }

    return sizes


@dataclasses.dataclass
class _Measured:
    """What one migration's traffic left for :meth:`Rehearsal.result`."""

    plans: list[ModelPlan]
    samples: list[Sample]
    queued: set[str]
    migration_waited: float
    notes: list[str]
    seconds: float


class Rehearsal:
    """The previous release's traffic for one audit run."""

    def __init__(
        self,
        config: Config,
        info: ConnectionInfo,
        connection: Any,
        alias: str,
        stats: StatsConnection | None = None,
        code_tables: Mapping[tuple[str, str], frozenset[str]] | None = None,
    ) -> None:
        self.config = config
        #: Migration key -> tables its code works on that its operations do not name.
        self.code_tables = dict(code_tables or {})
        self.info = info
        #: The Django connection the migrations run on.
        self.connection = connection
        self.alias = alias
        self.stats = stats
        self.rows = config.seed_rows or config.rehearse_rows
        self.threshold = config.rehearse_threshold
        self.lock_timeout = configured_lock_timeout(config, alias)
        self.pool = Pool(
            alias,
            config.rehearse_connections,
            config.rehearse_rate,
            lambda: django_wrapper(alias),
        )
        self.monitor = LockMonitor(info)
        self.reads = LongReads(info)
        self._control: psycopg.Connection[Any] | None = None
        self._seeder: Seeder | None = None
        self._previous: Any = None
        #: Rendered registries of the previous release, by the models they hold.
        self._apps: dict[frozenset[tuple[str, str]], Any] = {}
        self._measured: dict[tuple[str, str], _Measured] = {}
        #: The migration connection whose lock_timeout was set, and its value before.
        self._timeout_on: Any = None
        self._timeout_before: str | None = None
        self.seconds = 0.0
        self.queries = 0
        self.migrations = 0
        self.closed = False

    # -- what the engine calls ------------------------------------------------------
    def seeder(self) -> Seeder:
        if self._seeder is None:
            sizes = seed_sizes(self.stats, self.rows) if self.stats is not None else None
            self._seeder = Seeder(self.info, self.rows, sizes, state_operations=True)
        return self._seeder

    def previous_release(self, state: Any) -> None:
        """The project state at the start of the change: the code still running.

        Its model states are copied now (the migrations change them in place);
        models are rendered later, only those a migration's tables need.
        """
        from django.db.migrations.state import ProjectState

        self._previous = ProjectState(
            models={key: model.clone() for key, model in state.models.items()},
            real_apps=state.real_apps,
        )
        self._apps = {}

    def traffic(self, record: MigrationRecord, state: Any) -> _Traffic:
        """Around applying ``record``'s migration (``state``: the project state before it)."""
        return _Traffic(self, record, state)

    def result(self, record: MigrationRecord) -> MigrationRehearsal | None:
        """The measurements of ``record``'s migration (None when it touched no table of
        the previous release)."""
        measured = self._measured.pop(record.key, None)
        if measured is None:
            return None
        samples = measured.samples
        excluded = measure.baseline_failures(samples)
        notes = list(measured.notes)
        for (table, kind), error in sorted(excluded.items()):
            notes.append(
                f"the previous release's {QUERY_WORDS[kind]} on {table} failed already before "
                f"the migration, so it is not counted: {error}"
            )
        seen: set[tuple[str, str]] = set()
        for sample in samples:
            key = (sample.table, sample.kind)
            if key in seen:
                continue
            if sample.error and not sample.database:
                seen.add(key)
                notes.append(
                    f"the workload could not send the {QUERY_WORDS[sample.kind]} on "
                    f"{sample.table}: {sample.error}"
                )
            elif sample.duplicate:
                seen.add(key)
                notes.append(
                    f"the workload's {QUERY_WORDS[sample.kind]} on {sample.table} hit a unique "
                    "constraint with its generated values; not counted (made-up values "
                    f"colliding say nothing about the previous release): {sample.error}"
                )
        tables = tuple(
            measure.table_traffic(
                record,
                plan.table,
                plan.rows,
                samples,
                threshold=self.threshold,
                excluded=excluded,
                queued=plan.table in measured.queued,
                production_rows=self._production_rows(plan.table),
            )
            for plan in measured.plans
        )
        return MigrationRehearsal(
            tables=tables,
            long_read=bool(self.config.rehearse_long_read),
            lock_queue=bool(measured.queued),
            migration_waited_ms=measured.migration_waited * 1000,
            notes=tuple(notes),
            seconds=measured.seconds,
        )

    def notes(self) -> list[str]:
        c = self.config
        how = f"{c.rehearse_connections} connections at {c.rehearse_rate:g} queries/s each"
        if c.rehearse_long_read:
            how += f", a read held {c.rehearse_long_read:g}s on each table as each migration began"
        seed = self._seeder.seconds if self._seeder is not None else 0.0
        out = [
            f"--rehearse: the previous release's queries ({how}) ran during "
            f"{self.migrations} migration(s): {self.queries:,} queries; the rehearsal cost "
            f"{self.seconds + seed:.1f}s (seeding {seed:.1f}s, traffic {self.seconds:.1f}s)"
        ]
        if self.lock_timeout:
            out.append(
                f"--rehearse: migrations ran with lock_timeout = {self.lock_timeout}, as "
                "production's migrate is configured"
            )
        return out

    def summary(self) -> RehearsalSummary:
        c = self.config
        seed = self._seeder.seconds if self._seeder is not None else 0.0
        return RehearsalSummary(
            connections=c.rehearse_connections,
            rate=c.rehearse_rate,
            threshold_s=c.rehearse_threshold,
            long_read_s=c.rehearse_long_read,
            rows=self.rows,
            migrations=self.migrations,
            queries=self.queries,
            seconds=self.seconds + seed,
            seed_seconds=seed,
        )

    def close(self) -> list[str]:
        """Join every thread and close every connection; names what could not be."""
        if self.closed:
            return []
        self.closed = True
        started = time.monotonic()
        left = self.pool.close(self._terminate)
        self.restore_lock_timeout()
        self.monitor.close()
        self.reads.close()
        if self._control is not None:
            with contextlib.suppress(Exception):
                self._control.close()
            self._control = None
        self.seconds += time.monotonic() - started
        return left

    # -- helpers ------------------------------------------------------------------------
    def control(self) -> psycopg.Connection[Any]:
        if self._control is None or self._control.closed:
            self._control = self.info.connect(
                autocommit=True,
                application_name=CONTROL_NAME,
                options="-c statement_timeout=30s -c lock_timeout=10s",
            )
        return self._control

    def _terminate(self, pids: list[int]) -> None:
        if pids:
            self.control().execute(
                "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,)
            )

    def _production_rows(self, table: str) -> int | None:
        if self.stats is None:
            return None
        found = self.stats.table(table)
        return found.rows if found is not None else None

    def apps(self, tables: list[str]) -> Any:
        """The previous release's models of ``tables`` and of what they point to, rendered
        here (in the audit's thread, before any worker uses them)."""
        previous = self._previous
        if previous is None or not tables:
            return None
        keys = previous_models(previous, tables)
        if keys not in self._apps:
            from django.db.migrations.state import StateApps

            try:
                models = {key: previous.models[key] for key in keys}
                self._apps[keys] = StateApps(previous.real_apps, models)
            except Exception:  # a reference the closure missed: render everything
                self._apps[keys] = previous.apps
        return self._apps[keys]

    def plans(self, record: MigrationRecord, state: Any) -> list[ModelPlan]:
        """The previous release's models of the tables ``record``'s migration touches."""
        now = touched_tables([record.migration], state, state_operations=True)
        now.extend(sorted(self.code_tables.get(record.key, ())))
        wanted: dict[str, None] = {}
        for name in now:
            origin = record.existing.get(name)
            if origin is not None:
                wanted.setdefault(origin, None)
        apps = self.apps(list(wanted))
        if apps is None:
            return []
        models: dict[str, Any] = {}
        for model in apps.get_models(include_auto_created=True):
            meta = model._meta
            if meta.proxy or meta.db_table not in wanted or meta.db_table in models:
                continue
            models[meta.db_table] = model
        return [self._plan(models[t]) for t in wanted if t in models]

    def _plan(self, model: Any) -> ModelPlan:
        meta = model._meta
        conn = self.control()
        table = meta.db_table
        pks = _keys(conn, table, meta.pk.column)
        parents: dict[str, list[Any]] = {}
        for field in meta.concrete_fields:
            if field.is_relation and field.related_model is not None:
                target = field.target_field
                parents[field.name] = _keys(conn, field.related_model._meta.db_table, target.column)
                _warm(field.related_model)
        _warm(model)
        kinds, notes = kinds_for(model, parents)
        return ModelPlan(
            model=model,
            table=table,
            rows=_rows(conn, table),
            pks=pks,
            parents=parents,
            kinds=kinds,
            notes=notes,
        )

    def migration_pid(self) -> int | None:
        with contextlib.suppress(Exception):
            self.connection.ensure_connection()
            return int(self.connection.connection.info.backend_pid)
        return None

    def apply_lock_timeout(self) -> None:
        """Give the migration connection production's lock_timeout (once per connection)."""
        if not self.lock_timeout:
            return
        self.connection.ensure_connection()
        raw = self.connection.connection
        if raw is self._timeout_on:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            self._timeout_before = str(cursor.fetchone()[0])
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [self.lock_timeout])
        self._timeout_on = raw

    def restore_lock_timeout(self) -> None:
        raw, self._timeout_on = self._timeout_on, None
        if raw is None or self._timeout_before is None:
            return
        if getattr(self.connection, "connection", None) is not raw:
            return  # that connection is gone
        with contextlib.suppress(Exception), self.connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [self._timeout_before])


def previous_models(state: Any, tables: list[str]) -> frozenset[tuple[str, str]]:
    """Keys of the models of ``tables`` in ``state`` and of every model they refer to
    (foreign keys, many-to-many targets and through models, concrete bases): what
    rendering them needs. Every model when a table matches none (an automatic
    many-to-many table)."""
    from django.db import connection
    from django.db.backends.utils import truncate_name
    from django.db.migrations.utils import resolve_relation

    by_table: dict[str, tuple[str, str]] = {}
    for key, model in state.models.items():
        if model.options.get("proxy"):
            continue
        table = model.options.get("db_table") or truncate_name(
            f"{key[0]}_{key[1]}", connection.ops.max_name_length()
        )
        by_table.setdefault(table, key)
    if any(t not in by_table for t in tables):
        return frozenset(state.models)
    todo = [by_table[t] for t in tables]
    seen: set[tuple[str, str]] = set()
    while todo:
        key = todo.pop()
        if key in seen or key not in state.models:
            continue
        seen.add(key)
        model = state.models[key]
        for field in model.fields.values():
            remote = getattr(field, "remote_field", None)
            for target in (getattr(remote, "model", None), getattr(remote, "through", None)):
                if target is not None:
                    todo.append(resolve_relation(target, *key))
        for base in model.bases:
            if isinstance(base, str) or hasattr(base, "_meta"):
                with contextlib.suppress(Exception):
                    todo.append(resolve_relation(base, *key))
    return frozenset(seen)


def _warm(model: Any) -> None:
    """Fill the model's lazy caches here, before threads read them."""
    meta = model._meta
    _ = model._base_manager
    _ = meta.concrete_fields, meta.pk, meta.get_fields(), meta.parents
    for field in meta.concrete_fields:
        if field.is_relation and field.related_model is not None:
            _ = field.target_field


def _keys(conn: psycopg.Connection[Any], table: str, column: str) -> list[Any]:
    try:
        rows = conn.execute(
            sql.SQL("SELECT {c} FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT {n}").format(
                c=sql.Identifier(column), t=sql.Identifier(table), n=sql.Literal(SAMPLE_KEYS)
            )
        ).fetchall()
    except psycopg.Error:
        return []
    return [row[0] for row in rows]


def _rows(conn: psycopg.Connection[Any], table: str) -> int:
    """Rows in the table now (exact: the workload's own rows are gone by then)."""
    try:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        found = row.fetchone()
        return int(found[0]) if found else 0
    except psycopg.Error:
        return 0


class _Traffic:
    """The previous release's queries around one migration (a context manager)."""

    def __init__(self, rehearsal: Rehearsal, record: MigrationRecord, state: Any) -> None:
        self.r = rehearsal
        self.record = record
        self.state = state
        self.plans: list[ModelPlan] = []
        self.round: Round | None = None
        self.notes: list[str] = []
        self.spent = 0.0

    def __enter__(self) -> _Traffic:
        r = self.r
        started = time.monotonic()
        try:
            self.plans = r.plans(self.record, self.state)
            if not self.plans:
                return self
            for plan in self.plans:
                self.notes.extend(plan.notes)
            items = [Item(plan, kind) for plan in self.plans for kind in plan.kinds]
            self.round = r.pool.begin(items)
            if not self.round.warmed.wait(WARM_TIMEOUT):
                self.notes.append("the workload's first queries did not finish in time")
            if r.config.rehearse_long_read:
                self.notes.extend(
                    r.reads.hold([p.table for p in self.plans], r.config.rehearse_long_read)
                )
            r.apply_lock_timeout()
            r.monitor.start(r.migration_pid(), self._waiting_on)
            self.round.go.set()
        except BaseException:
            self._abort()
            raise
        finally:
            self.spent += time.monotonic() - started
        return self

    def _waiting_on(self) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        for worker in self.r.pool.workers:
            pid, item = worker.pid, worker.current
            if pid is not None:
                out[pid] = item.table if item is not None else None
        return out

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if not self.plans:
            return
        r = self.r
        started = time.monotonic()
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._abort()  # interrupted: no last round, the audit is ending
            return
        try:
            r.monitor.stop()
            r.reads.release()
            assert self.round is not None
            if not r.pool.end(self.round, timeout=END_TIMEOUT):
                self.notes.append("the workload's last queries did not finish in time")
        except BaseException:
            self._abort()
            raise
        self.spent += time.monotonic() - started
        samples = list(self.round.samples)
        r.queries += len(samples)
        r.migrations += 1
        r.seconds += self.spent
        r._measured[self.record.key] = _Measured(
            plans=self.plans,
            samples=samples,
            queued=set(r.monitor.queued),
            migration_waited=r.monitor.migration_waited,
            notes=self.notes,
            seconds=self.spent,
        )

    def _abort(self) -> None:
        with shielded():
            self.r.pool.abort(self.round)
            self.r.monitor.stop()
            self.r.reads.release()


@contextlib.contextmanager
def open_rehearsal(
    config: Config,
    info: ConnectionInfo,
    connection: Any,
    alias: str,
    stats: StatsConnection | None = None,
    *,
    code_tables: Mapping[tuple[str, str], frozenset[str]] | None = None,
) -> Iterator[Rehearsal]:
    """A :class:`Rehearsal` for one audit run, closed however the run ends."""
    if not config.trace:
        raise ConfigurationError(
            "--rehearse needs the trace (it says which operation locked what): drop --no-trace"
        )
    rehearsal = Rehearsal(config, info, connection, alias, stats, code_tables)
    try:
        yield rehearsal
    finally:
        with shielded():
            left = rehearsal.close()
        if left:
            log.warning("rehearsal threads still running after the audit: %s", ", ".join(left))
