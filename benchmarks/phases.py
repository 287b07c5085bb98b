"""Run a management command with timers around the phases of an audit (or of migrate).

    cd <project> && python <repo>/benchmarks/phases.py OUT.json migration_audit --since HEAD~1 ...

Measurement only: functions of Django and migration_guard are wrapped with
timers (wall and process CPU time, call counts) and then the command runs as
``manage.py`` would run it, against the real PostgreSQL it is given. Nothing is
replaced. Timers nest: "cache store" contains the restart of the server, "apply
plan" contains everything from the first migration to the last. SQL time is
the time spent in Django's cursor ``execute`` (a round trip to the server and
the server's work), split by whether the migration was part of the change.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STARTED = time.monotonic()


class Phases:
    def __init__(self) -> None:
        self.wall: dict[str, float] = collections.defaultdict(float)
        self.cpu: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter[str] = collections.Counter()
        #: True while a migration of the change is applied (apply_recorded).
        self.in_change = False
        self.in_store = False
        #: Functions that were not found (the code moved): their phase is not timed.
        self.missing: list[str] = []

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] += wall
        self.cpu[name] += cpu
        self.calls[name] += 1

    def wrap(self, owner: Any, attr: str, name: str | Callable[[], str]) -> None:
        found = (owner.__dict__ if isinstance(owner, type) else vars(owner)).get(attr)
        if found is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
            return
        kind = type(found) if isinstance(found, (staticmethod, classmethod)) else None
        original = found.__func__ if kind else found

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            label = name() if callable(name) else name
            w0, c0 = time.monotonic(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.add(label, time.monotonic() - w0, time.process_time() - c0)

        setattr(owner, attr, kind(timed) if kind else timed)

    def flag(self, owner: Any, attr: str, flag: str) -> None:
        """Set ``self.<flag>`` while ``owner.attr`` runs."""
        original = (owner.__dict__ if isinstance(owner, type) else vars(owner)).get(attr)
        if original is None:
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
            return

        @functools.wraps(original)
        def flagged(*args: Any, **kwargs: Any) -> Any:
            setattr(self, flag, True)
            try:
                return original(*args, **kwargs)
            finally:
                setattr(self, flag, False)

        setattr(owner, attr, flagged)

    def part(self) -> str:
        return "change" if self.in_change else "base"


def install(phases: Phases) -> None:
    from django.core.management import sql as management_sql
    from django.core.management.base import BaseCommand
    from django.core.management.commands import migrate as migrate_command
    from django.db.backends import utils as db_utils
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.migration import Migration

    p = phases
    p.wrap(BaseCommand, "check", "system checks")
    p.wrap(MigrationLoader, "build_graph", "load migration graph (import files)")
    p.wrap(MigrationExecutor, "apply_migration", lambda: f"apply migrations ({p.part()})")
    p.wrap(db_utils.CursorWrapper, "_execute", lambda: f"SQL execute ({p.part()})")
    p.wrap(db_utils.CursorWrapper, "_executemany", lambda: f"SQL execute ({p.part()})")
    p.wrap(Migration, "mutate_state", "state of restored migrations (mutate_state)")
    for module in (management_sql, migrate_command):
        p.wrap(module, "emit_post_migrate_signal", "post_migrate (content types, permissions)")
    p.wrap(migrate_command.Command, "handle", "migrate: handle")

    try:
        from migration_guard import engine
        from migration_guard.cache import BaseStateCache
        from migration_guard.management.commands import migration_audit
        from migration_guard.postgres import scratch
        from migration_guard.postgres.local import LocalCluster
        from migration_guard.trace.observe import Tracer
    except ImportError:  # pragma: no cover - an older layout: time what exists
        return
    p.wrap(migration_audit, "run_audit", "audit: run_audit")
    p.wrap(migration_audit, "render", "render report")
    p.wrap(engine, "load_graph", "audit: load graph + checks")
    p.wrap(engine, "select", "audit: select change (git)")
    p.wrap(engine, "take_snapshot", "trace: snapshot")
    p.flag(engine, "apply_recorded", "in_change")
    p.wrap(engine, "apply_recorded", "audit: apply change (recorded, traced)")
    p.wrap(engine._Run, "execute", "audit: apply plan (total)")
    p.wrap(engine._Run, "_judge", "rules + merge with trace")
    p.wrap(engine._Run, "_state_of", "state rebuilt after a failure")
    p.wrap(scratch, "create_database", "create scratch database")
    p.wrap(scratch, "drop_database", "drop scratch database")
    p.wrap(BaseStateCache, "key", "cache: key (hash migration files)")
    p.wrap(BaseStateCache, "lookup", "cache: lookup (verify entry)")
    p.flag(LocalCluster, "save_data", "in_store")
    p.wrap(LocalCluster, "save_data", "cache: store (stop, copy, restart)")
    p.wrap(LocalCluster, "_initdb", "postgres: initdb")
    p.wrap(LocalCluster, "_copy_data_in", "cache: restore (copy data dir in)")
    p.wrap(
        LocalCluster,
        "_launch",
        lambda: "postgres: restart after store" if p.in_store else "postgres: start",
    )
    p.wrap(LocalCluster, "_cleanup", "postgres: stop + remove")
    p.wrap(Tracer, "observe", "trace: observe after statements")
    p.wrap(Tracer, "end_operation", "trace: end of operation")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    sys.path.insert(0, os.getcwd())
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    w0, c0 = time.monotonic(), time.process_time()
    django.setup()
    phases = Phases()
    phases.add("django.setup()", time.monotonic() - w0, time.process_time() - c0)
    phases.add("interpreter start + imports before setup", w0 - STARTED, 0.0)
    install(phases)
    from django.core.management import call_command

    code = 0
    try:
        call_command(*argv[1:], skip_checks=False)
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        phases.add("whole command (in process)", time.monotonic() - STARTED, time.process_time())
        out.write_text(
            json.dumps(
                {
                    name: {
                        "wall": round(phases.wall[name], 4),
                        "cpu": round(phases.cpu[name], 4),
                        "calls": phases.calls[name],
                    }
                    for name in phases.wall
                }
                | {"_not_timed": phases.missing},
                indent=2,
            )
        )
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
