"""The audit, from selection to report: one service function the commands call.

1. load the migration graph from disk and choose the change (``discovery``);
2. get a PostgreSQL server and a scratch database on it (``postgres``);
3. point Django's connections at the scratch database (``djangodb``);
4. apply every migration the change needs, in plan order: those before it
   plainly, those of the change with recording (``collect``) and, unless
   turned off, observation (``trace``);
5. run the rules on each recorded migration, merge what the trace saw, and
   apply ignores and severity settings.

Nothing here prints: progress goes to the ``progress`` callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import gc
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, router
from django.db import Error as DjangoDatabaseError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from . import sqlfacts
from .cache import BaseStateCache, Entry
from .capture import Capture, captured
from .collect import (
    MigrationRecord,
    apply_recorded,
    collect_static,
    database_error_text,
    new_record,
)
from .conf import Config
from .discovery import Change, Key, Order, Selection, change_order, load_graph, select
from .djangodb import connections_pointed_at, original_settings
from .exceptions import ProviderError, ScratchDatabaseError
from .judge import Judge
from .lineage import Lineage
from .pgversion import PgFacts
from .postgres import LocalCluster, PostgresOptions, open_server, version_text
from .postgres.base import major_of
from .postgres.scratch import scratch_database
from .results import AUDITED, FAILED, SKIPPED, AuditReport, MigrationResult, PostgresInfo
from .routing import operation_routed, routed_to
from .rules.migration_failed import MigrationFailed
from .trace.observe import Tracer, take_snapshot, valid_not_null_checks
from .trace.stats import StatsConnection, attach_sizes, open_stats
from .trace.summary import observed_operations
from .watchdog import Watchdog

if TYPE_CHECKING:
    from .rehearse import Rehearsal
    from .trace.seed import Seeder

log = logging.getLogger(__name__)

Progress = Callable[[str, dict[str, Any]], None]


@dataclasses.dataclass(frozen=True)
class AuditRequest:
    selection: Selection
    config: Config
    database: str = DEFAULT_DB_ALIAS
    keep: bool = False
    manage: str = "python manage.py"
    #: --rehearse: tables a migration's code works on that its operations do not name
    #: (a RunPython's tables cannot be seen before it runs), when the caller knows them:
    #: the planner's backfills. The previous release's traffic goes to them too.
    code_tables: Mapping[Key, frozenset[str]] = dataclasses.field(default_factory=dict)


def _noop(event: str, data: dict[str, Any]) -> None:
    return None


def postgres_options(config: Config) -> PostgresOptions:
    return PostgresOptions(
        source=config.postgres,
        database_url=config.database_url,
        bindir=config.postgres_bindir,
        docker_image=config.postgres_image,
        prefer_major=config.postgres_version,
        allow_privileged_role=config.allow_privileged_role,
    )


def lock_timeout_configured(config: Config, alias: str) -> bool:
    if config.lock_timeout:
        return True
    try:
        options = original_settings(alias).get("OPTIONS", {}) or {}
    except Exception:
        return False
    return "lock_timeout" in str(options.get("options", ""))


def routing_notes(loader: Any, targets: Iterable[Key], alias: str) -> list[str]:
    """Migrations of the change that the routers send to another database than ``alias``.

    Django applies every migration through the alias ``migrate`` is given and
    skips the operations its routers do not allow there: such a migration is
    audited as a no-op. Say where it does run, and how to audit it there.
    """
    from django.db import connections

    aliases = [a for a in connections.settings if a != alias]
    if not aliases:
        return []
    elsewhere: dict[str, list[str]] = {}
    for key in targets:
        migration = loader.graph.nodes[key]
        if routed_to(migration, alias):
            continue
        other = next((a for a in aliases if routed_to(migration, a)), None)
        if other is not None:
            elsewhere.setdefault(other, []).append(f"{key[0]}.{key[1]}")
    notes = []
    for other, names in elsewhere.items():
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        notes.append(
            f"{len(names)} migration(s) of the change run on database {other!r}, not "
            f"{alias!r} (DATABASE_ROUTERS say so), so they were audited as no-ops here: "
            f"{shown}. Audit them with --database {other}."
        )
    return notes


def lock_timeout_where(alias: str) -> str:
    """Where a lock_timeout for migrations would be configured, for messages."""
    import importlib.util

    from django.conf import settings

    module = getattr(settings, "SETTINGS_MODULE", None) or ""
    where = "settings"
    with contextlib.suppress(Exception):
        spec = importlib.util.find_spec(module) if module else None
        if spec is not None and spec.origin:
            where = relative_path(Path(spec.origin), Path.cwd()) or where
    return (
        f"neither MIGRATION_GUARD['lock_timeout'] nor '-c lock_timeout=...' in "
        f"DATABASES[{alias!r}]['OPTIONS'] of {where}"
    )


def repository_root() -> Path:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.strip()
        if out:
            return Path(out)
    except (OSError, subprocess.SubprocessError):
        pass
    return Path.cwd()


def relative_path(path: Path | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Spare the garbage collector most of its work while a history is applied.

    Applying a history is Django re-rendering model classes after each operation:
    a stream of short-lived cycles, and every so often a collection of the oldest
    generation that walks every object of the process (Django, the apps, the
    migration graph). Measured on a 413-migration history: 5.6 s of a 31 s audit
    in the collector. The objects alive when the history starts are moved out of
    its sight (``gc.freeze``): 4.4 s, with the same peak memory (collecting the
    middle generation less often saved more, for 14 % more memory: not taken).
    They are given back afterwards, so an in-process caller finds its collector
    as it was.
    """
    if not gc.isenabled():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_audit(request: AuditRequest, progress: Progress = _noop) -> AuditReport:
    """Audit the change ``request`` selects; return the report (never prints)."""
    config = request.config
    loader = load_graph()
    change = select(loader, request.selection, config)
    progress("selected", {"change": change})
    if not change.targets:
        return AuditReport(
            change=change.description,
            postgres=None,
            migrations=(),
            traced=config.trace,
            fail_on=config.fail_on,
            notes=("no migrations to audit",),
        )
    lock_timeout = lock_timeout_configured(config, request.database)
    rehearsed = None
    routed = routing_notes(loader, change.targets, request.database)
    order = change_order(loader, change.targets, separately=change.separately)
    base = [loader.graph.nodes[key] for key in order.base]
    cache = _CacheUse(config, base, request.database)
    for attempt in (1, 2):
        try:
            with contextlib.ExitStack() as stack:
                stats = stack.enter_context(open_stats(config))
                server = stack.enter_context(
                    open_server(postgres_options(config), data_source=cache.choose)
                )
                progress("postgres", {"description": server.description})
                if cache.entry is not None:
                    info = server.info.with_dbname(cache.entry.dbname)
                else:
                    info = stack.enter_context(scratch_database(server, keep=request.keep))
                connection = stack.enter_context(connections_pointed_at(info, request.database))
                _check_django_supports(connection, server)
                # Rules ask the scratch server which functions are volatile (pg_proc).
                stack.enter_context(sqlfacts.volatility_from(connection))
                pg = _pg_facts(config, server.server_version, stats)
                output = stack.enter_context(captured())
                rehearsal = None
                if config.rehearse:
                    from .rehearse import open_rehearsal  # its workload: only when asked for

                    rehearsal = stack.enter_context(
                        open_rehearsal(
                            config,
                            info,
                            connection,
                            request.database,
                            stats,
                            code_tables=request.code_tables,
                        )
                    )
                run = _Run(
                    request, change, order, connection, info, pg, lock_timeout, progress, rehearsal
                )
                run.loader = loader
                run.output = output
                with fewer_collections():
                    results = run.execute(server, cache)
                results, size_notes = attach_sizes(results, stats, info)
                notes = routed + list(run.notes) + cache.notes + size_notes
                if rehearsal is not None:
                    notes += rehearsal.notes()
                    rehearsed = rehearsal.summary()
                postgres = _postgres_info(config, server, stats)
            break
        except ProviderError as exc:
            if attempt == 1 and cache.restored() and not _disk_full(exc):
                cache.discard()  # a damaged entry: rebuild from scratch
                continue
            raise
        except (DjangoDatabaseError, psycopg.Error) as exc:  # not a finding: the server failed
            raise ScratchDatabaseError(
                f"the scratch PostgreSQL server failed: {database_error_text(exc)}"
            ) from exc
    if postgres.production_major and postgres.production_major != postgres.major:
        notes.append(
            f"production runs PostgreSQL {postgres.production_major} but the audit ran on "
            f"{postgres.version}: lock behaviour can differ between major versions; use "
            f"--postgres-image postgres:{postgres.production_major} or MIGRATION_GUARD_PG_BINDIR "
            "to match."
        )
    return AuditReport(
        change=change.description,
        postgres=postgres,
        migrations=tuple(results),
        traced=config.trace,
        fail_on=config.fail_on,
        notes=tuple(notes),
        rehearsal=rehearsed,
    )


def _postgres_info(config: Config, server: Any, stats: StatsConnection | None) -> PostgresInfo:
    production: int | None
    origin: str | None
    if stats is not None and not config.postgres_version:
        production, origin = stats.major, "stats-url"
    else:
        production, origin = config.postgres_version, "setting" if config.postgres_version else None
    return PostgresInfo(
        version=version_text(server.server_version),
        major=major_of(server.server_version),
        source=server.source,
        description=server.description,
        production_major=production,
        production_origin=origin,
    )


class _CacheUse:
    """The base-state cache as one audit uses it (throwaway clusters only)."""

    def __init__(self, config: Config, base: list[Any], alias: str) -> None:
        self.cache = BaseStateCache(Path(config.cache_dir) if config.cache_dir else None)
        self.enabled = config.cache and bool(base)
        self.base = base
        self.alias = alias
        self.key: str | None = None
        self.entry: Entry | None = None
        #: A fresh cluster of these binaries, saved right after an earlier initdb.
        self.fresh: Entry | None = None
        self.fresh_enabled = config.cache
        self.notes: list[str] = []

    def choose(self, cluster: LocalCluster) -> Path | None:
        """Called before a throwaway cluster starts: the saved base state, if any;
        else a fresh cluster saved after an earlier initdb (and when there is none
        yet, the one about to be made is saved)."""
        if self.enabled:
            routers = ",".join(
                f"{type(r).__module__}.{type(r).__qualname__}" for r in router.routers
            )
            self.key = self.cache.key(
                self.base,
                pg_major=cluster.binary_major,
                alias=self.alias,
                extra=(f"routers={routers}", f"source={cluster.source}"),
            )
            self.entry = self.cache.lookup(self.key)
            if self.entry is not None:
                self.notes.append(
                    f"base state ({self.entry.migrations} migrations before the change) "
                    "restored from the cache"
                )
                log.debug("base state restored from %s", self.entry.path)
                return self.entry.data
        if not self.fresh_enabled:
            return None
        key = self.cache.key(
            (),
            pg_major=cluster.binary_major,
            alias="",
            extra=(
                "fresh cluster",
                f"binaries={cluster.binaries_identity}",
                f"initdb={' '.join(cluster.initdb_options)}",
            ),
        )
        self.fresh = self.cache.lookup(key)
        if self.fresh is not None:
            log.debug("fresh cluster restored from %s (no initdb)", self.fresh.path)
            return self.fresh.data
        cluster.after_initdb = lambda save: self._store_fresh(key, save)
        return None

    def _store_fresh(self, key: str, save: Callable[[Path], None]) -> None:
        try:
            self.cache.store(key, save, dbname="", migrations=0)
        except OSError as exc:
            log.warning(
                "could not save the fresh cluster in the cache %s: %s",
                self.cache.directory,
                _os_error_text(exc),
            )

    def store(self, server: Any, connection: Any, dbname: str) -> None:
        if not (self.enabled and self.key and self.entry is None):
            return
        if not isinstance(server, LocalCluster):
            return
        connection.close()
        try:
            self.cache.store(self.key, server.save_data, dbname=dbname, migrations=len(self.base))
        except OSError as exc:
            log.warning(
                "could not write the base-state cache in %s: %s",
                self.cache.directory,
                _os_error_text(exc),
            )

    def restored(self) -> bool:
        """Did the cluster start from a cache entry (which may be what failed)?"""
        return self.entry is not None or self.fresh is not None

    def discard(self) -> None:
        """The entry the cluster started from is damaged: remove it, use none."""
        for entry in (self.entry, self.fresh):
            if entry is not None:
                self.cache.invalidate(entry.key)
        self.entry = self.fresh = None
        self.notes = []
        self.enabled = self.fresh_enabled = False


def _check_django_supports(connection: Any, server: Any) -> None:
    try:
        connection.ensure_connection()
        connection.check_database_version_supported()
    except Exception as exc:
        if "later is required" in str(exc):
            raise ProviderError(
                f"{exc} by this Django version, and the scratch server is "
                f"{server.description}. Choose a newer server (--postgres-image, "
                "MIGRATION_GUARD_PG_BINDIR)."
            ) from exc
        raise


def _pg_facts(config: Config, server_version: int, stats: StatsConnection | None) -> PgFacts:
    if config.postgres_version:
        return PgFacts(config.postgres_version, origin="setting")
    if stats is not None:
        return PgFacts(stats.major, origin="stats-url")
    return PgFacts(major_of(server_version), origin="scratch server")


class _Run:
    """One audit run on the scratch database."""

    def __init__(
        self,
        request: AuditRequest,
        change: Change,
        order: Order,
        connection: Any,
        info: Any,
        pg: PgFacts,
        lock_timeout: bool,
        progress: Progress,
        rehearsal: Rehearsal | None = None,
    ) -> None:
        self.request = request
        self.config = request.config
        self.change = change
        self.order = order
        self.connection = connection
        self.info = info
        self.pg = pg
        self.lock_timeout = lock_timeout
        self.progress = progress
        #: The graph loaded from disk for the selection (None: the executor loads its own).
        self.loader: Any = None
        self.notes: list[str] = []
        #: What migration code prints goes here, taken per migration.
        self.output: Capture | None = None
        self.seeder: Seeder | None = None
        if self.config.seed_rows:
            from .trace.seed import Seeder

            self.seeder = Seeder(info, self.config.seed_rows)
        #: --rehearse: the previous release's traffic around each migration (rehearse/).
        self.rehearsal = rehearsal
        if rehearsal is not None:
            self.seeder = rehearsal.seeder()
        self.root = repository_root()
        self.judge = Judge(
            self.config,
            pg,
            traced=self.config.trace,
            lock_timeout_configured=lock_timeout,
            manage=request.manage,
            database=request.database,
            lock_timeout_where=lock_timeout_where(request.database),
        )
        #: The time limit of each migration, and the heartbeat (watchdog.py).
        self.watchdog = Watchdog(self.config.migration_timeout, progress, lambda: self.connection)

    def execute(self, server: Any, cache: _CacheUse) -> list[MigrationResult]:
        executor = _executor(self.connection, self.loader)
        loader = executor.loader
        targets = set(self.change.targets) | {key for key, _ in self.order.joined}
        plan = self.order.keys
        if self.order.joined:
            shown = [
                f"{key[0]}.{key[1]} (on {because[0]}.{because[1]})"
                for key, because in self.order.joined[:5]
            ]
            more = len(self.order.joined) - len(shown)
            self.notes.append(
                f"{len(self.order.joined)} migration(s) outside the selection are audited with "
                "the change, because they depend on a migration of it and so cannot run before "
                f"it: {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")
            )
        state = executor._create_project_state(with_applied_migrations=False)  # type: ignore[attr-defined]
        results: list[MigrationResult] = []
        broken: set[Key] = set()
        snapshot = None
        restored = {(m.app_label, m.name) for m in cache.base}
        applied: list[Key] = []
        base_done = False
        started = time.monotonic()
        audited = 0
        for key in plan:
            migration = loader.graph.nodes[key]
            parents = {p.key for p in loader.graph.node_map[key].parents}
            if parents & broken:
                broken.add(key)
                if key in targets:
                    results.append(self._skipped(migration, parents & broken))
                continue
            if cache.entry is not None and key in restored:
                state = migration.mutate_state(state, preserve=False)
                applied.append(key)
                continue
            if "apps" not in state.__dict__:
                _ = state.apps  # render once: later migrations mutate it incrementally
            if key in targets and not base_done:
                base_done = True
                if cache.entry is None:
                    self._post_migrate(state, applied)
                    cache.store(server, self.connection, self.info.dbname)
            if key not in targets:
                try:
                    with self.watchdog.limit(key, migration):
                        state = executor.apply_migration(state, migration)
                    applied.append(key)
                except Exception as exc:
                    self._check_server(key, exc, server)
                    broken.add(key)
                    state = self._state_of(loader, applied)
                    results.append(self._base_failure(migration, exc))
                continue
            fresh = snapshot is None or self.change.separately
            if snapshot is None or self.change.separately:
                if self.seeder is not None:  # once per change; per migration when separately
                    together = [loader.graph.nodes[k] for k in plan if k in targets]
                    self.seeder.seed([migration] if self.change.separately else together, state)
                snapshot = take_snapshot(self._raw(), snapshot)
                lineage = Lineage(snapshot.tables)
                if self.rehearsal is not None:
                    self.rehearsal.previous_release(state)  # the code still serving requests
            record = new_record(migration, lineage.names)
            for op in record.operations:
                op.routed = operation_routed(
                    op.operation, migration.app_label, self.request.database
                )
            record.relation_tables = snapshot.relation_tables
            record.valid_not_null = valid_not_null_checks(self._raw())
            self.progress(
                "migration",
                {
                    "key": key,
                    "index": audited,
                    "total": len(targets),
                    "elapsed": time.monotonic() - started,
                },
            )
            audited += 1
            if self.output is not None:
                self.output.take()  # printed by the base: not about this migration
            tracer = Tracer(self.info, snapshot, fresh=fresh) if self.config.trace else None
            traffic: Any = (
                self.rehearsal.traffic(record, state)
                if self.rehearsal is not None
                else contextlib.nullcontext()
            )
            try:
                with traffic, self.watchdog.limit(key, migration, record):
                    state = apply_recorded(executor, state, record, tracer)
                applied.append(key)
            except Exception as exc:
                self._check_server(key, exc, server)
                broken.add(key)
                state = self._state_of(loader, applied)
                with contextlib.suppress(Exception):
                    if record.atomic:
                        collect_static(executor, self._state_of(loader, applied), record)
            finally:
                if tracer is not None:
                    tracer.close()
                if self.output is not None:
                    record.output = self.output.take()
            lineage.follow(record, applied=record.applied or not record.atomic)
            results.append(self._judge(record))
            record.release_states()
        if self.seeder is not None:
            self.notes.extend(self.seeder.notes())
        return self.judge.finish(results)

    def _check_server(self, key: Key, exc: BaseException, server: Any) -> None:
        """Raise when a migration failed because the scratch server did, not the migration.

        A full disk, no memory, an I/O error, or a server that no longer
        accepts connections (it was killed) is no finding: the audit stops
        with an error (exit 2) instead of reporting the migration.
        """
        trouble = _SERVER_TROUBLE.get(_sqlstate(exc) or "")
        if trouble is None:
            if self._connection_usable():
                return
            # The connection is gone. Only it (the migration terminated or closed it):
            # a finding, and the audit goes on with a new one. The server: no audit.
            with contextlib.suppress(Exception):
                self.connection.close()
            try:
                self.connection.ensure_connection()
                return
            except Exception:
                trouble = "stopped"
        where = ""
        if isinstance(server, LocalCluster) and server.directory is not None:
            where = " " + server.no_space_advice() if trouble == _SERVER_TROUBLE["53100"] else ""
            serious = [
                line
                for line in server.log_tail(200).splitlines()
                if any(word in line for word in ("PANIC", "FATAL", "ERROR", "No space"))
            ]
            if serious:
                where += "\nIts log says:\n" + "\n".join(serious[-5:])
        raise ScratchDatabaseError(
            f"the scratch PostgreSQL server {trouble} while {key[0]}.{key[1]} was applied, so "
            f"the audit cannot go on:\n{database_error_text(exc)}\n{where.lstrip()}".rstrip()
        ) from exc

    def _connection_usable(self) -> bool:
        if self.connection.connection is None:  # Django 4.2's is_usable() needs one
            return False
        try:
            return bool(self.connection.is_usable())
        except Exception:
            return False

    @staticmethod
    def _state_of(loader: Any, applied: list[Key]) -> ProjectState:
        """The project state after ``applied`` (rebuilt after a failure left it half-mutated)."""
        state = (
            loader.project_state(nodes=applied, at_end=True)
            if applied
            else ProjectState(real_apps=loader.unmigrated_apps)
        )
        _ = state.apps
        return state

    def _post_migrate(self, state: ProjectState, applied: list[Key]) -> None:
        """Do what ``migrate`` does after each deploy: content types, permissions...

        Production reached the base state through deploys that each ended with
        ``post_migrate``; data migrations of the change may rely on its rows.
        """
        if not applied:
            return
        from django.core.management.sql import emit_post_migrate_signal

        try:
            emit_post_migrate_signal(0, False, self.request.database, apps=state.apps, plan=[])
        except Exception as exc:
            self.notes.append(
                "post_migrate handlers failed on the base state "
                f"({type(exc).__name__}: {exc}); content types and permissions may be missing"
            )

    def _raw(self) -> Any:
        self.connection.ensure_connection()
        return self.connection.connection

    # -- results ------------------------------------------------------------------
    def _path(self, migration: Any) -> str | None:
        from .source import migration_path

        return relative_path(migration_path(migration), self.root)

    def _skipped(self, migration: Any, because: set[Key]) -> MigrationResult:
        names = ", ".join(f"{a}.{n}" for a, n in sorted(because))
        return MigrationResult(
            app_label=migration.app_label,
            name=migration.name,
            path=self._path(migration),
            atomic=bool(migration.atomic),
            status=SKIPPED,
            error=f"not audited: it depends on {names}, which failed to apply",
            operations=len(migration.operations),
        )

    def _base_failure(self, migration: Any, exc: BaseException) -> MigrationResult:
        text = database_error_text(exc)
        return MigrationResult(
            app_label=migration.app_label,
            name=migration.name,
            path=self._path(migration),
            atomic=bool(migration.atomic),
            status=FAILED,
            findings=(MigrationFailed.before_change(migration.app_label, migration.name, text),),
            error=text,
            operations=len(migration.operations),
        )

    def _judge(self, record: MigrationRecord) -> MigrationResult:
        rehearsed = self.rehearsal.result(record) if self.rehearsal is not None else None
        return MigrationResult(
            app_label=record.app_label,
            name=record.name,
            path=relative_path(record.path, self.root),
            atomic=record.atomic,
            status=AUDITED if record.error is None else FAILED,
            findings=tuple(self.judge.migration(record, rehearsed)),
            error=record.error,
            duration_ms=record.duration_ms,
            operations=len(record.operations),
            trace=observed_operations(record) if self.config.trace else (),
            output=record.output,
            rehearsal=rehearsed,
        )


def _executor(connection: Any, loader: Any | None) -> MigrationExecutor:
    """Django's executor on ``connection``, with the graph already loaded from disk.

    ``MigrationExecutor(connection)`` would import and link every migration file
    again (and read the scratch database's ``django_migrations``); the audit's
    plan comes from the disk-only graph, so the executor uses that one.
    """
    if loader is None:
        return MigrationExecutor(connection)
    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = connection
    executor.loader = loader
    executor.recorder = MigrationRecorder(connection)
    executor.progress_callback = None
    return executor


def _os_error_text(exc: OSError) -> str:
    """One line for an OSError; ``shutil.copytree`` gathers one error per file."""
    if isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list):
        errors = exc.args[0]
        if errors:
            first = errors[0][-1] if isinstance(errors[0], tuple) else errors[0]
            more = f" (and {len(errors) - 1} more files)" if len(errors) > 1 else ""
            return f"{first}{more}"
    return str(exc)


#: SQLSTATEs that say the scratch server is in trouble, not the migration.
_SERVER_TROUBLE = {
    "53100": "ran out of disk space",
    "53200": "ran out of memory",
    "58030": "hit an I/O error",
}


def _sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        state = getattr(getattr(cause, "diag", None), "sqlstate", None) or getattr(
            cause, "sqlstate", None
        )
        if state:
            return str(state)
        cause = cause.__cause__ or cause.__context__
    return None


def _disk_full(exc: BaseException) -> bool:
    """Did ``exc`` come from a full disk (then a cache entry is not to blame)?"""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return True
        if "No space left on device" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False
