"""The change-mode property: a migration judged inside a change equals the same
migration judged alone, except about relations created earlier in the change.

:func:`run_cut` works on a real project in a subprocess (its own settings, so
third-party histories can be used): it records a "production" database as
migrated to a cut (``django_migrations`` only: the audit reads nothing else
there), audits ``--unapplied`` as CI would, then audits every change migration
alone (``migration_audit APP NAME``), and returns both reports with, per change
migration, the tables the change created before it.

:func:`differences` compares them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: Run-level advice: said once per run, so it sits on whichever migration comes first.
RUN_LEVEL = frozenset({"lock-timeout-missing"})

RUNNER = r"""
import json, os, sys
spec = json.loads(open(sys.argv[1]).read())
import importlib
settings_module = importlib.import_module(os.environ["DJANGO_SETTINGS_MODULE"])
settings_module.DATABASES = {
    "default": {"ENGINE": "django.db.backends.postgresql", **spec["production"]},
}
import django
django.setup()
from django.db import connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from migration_guard.conf import build_config
from migration_guard.discovery import Selection, change_order, full_plan, select
from migration_guard.engine import AuditRequest, run_audit

loader = MigrationLoader(None, ignore_no_migrations=True)
graph = loader.graph
change = {tuple(k) for k in spec["change"]}
# everything that depends on a change migration is not applied either
for key in full_plan(loader):
    if any(p.key in change for p in graph.node_map[key].parents):
        change.add(key)
applied = [k for k in full_plan(loader) if k not in change]
recorder = MigrationRecorder(connections["default"])
recorder.ensure_schema()
for app, name in applied:
    recorder.record_applied(app, name)
for alias in connections:
    connections[alias].close()

config = build_config(
    {"postgres": "url", "database_url": spec["scratch_url"], "include_third_party": True},
    django_settings={}, use_pyproject=False,
)
change_report = run_audit(AuditRequest(selection=Selection(unapplied=True), config=config))
chosen = select(loader, Selection(unapplied=True), config)
order = change_order(loader, chosen.targets, separately=False)
plan = full_plan(loader, chosen.targets)

# Tables and indexes the change creates before each of its migrations, read off
# PostgreSQL: a table renamed by the change keeps its oid, so it is not new.
import psycopg
from psycopg import sql as pgsql
from migration_guard.djangodb import connections_pointed_at
from migration_guard.postgres import PostgresOptions, open_server
from django.db.migrations.executor import MigrationExecutor

TABLES = (
    "SELECT c.oid::bigint, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind IN ('r', 'p', 'i', 'I') AND n.nspname = 'public'"
)
created_before = {}
with open_server(PostgresOptions(source="url", database_url=spec["scratch_url"])) as server:
    dbname = "created_" + os.urandom(4).hex()
    with server.info.connect(autocommit=True) as admin:
        admin.execute(pgsql.SQL("CREATE DATABASE {}").format(pgsql.Identifier(dbname)))
    try:
        info = server.info.with_dbname(dbname)
        with connections_pointed_at(info) as connection:
            executor = MigrationExecutor(connection)
            state = executor._create_project_state(with_applied_migrations=False)
            for key in order.base:
                state = executor.apply_migration(state, loader.graph.nodes[key])
            from django.core.management.sql import emit_post_migrate_signal
            emit_post_migrate_signal(0, False, "default", apps=state.apps, plan=[])
            with info.connect() as conn:
                base_oids = {oid for oid, _ in conn.execute(TABLES).fetchall()}
            for key in order.change:
                with info.connect() as conn:
                    rows = conn.execute(TABLES).fetchall()
                    created_before[".".join(key)] = sorted(
                        name for oid, name in rows if oid not in base_oids
                    )
                state = executor.apply_migration(state, loader.graph.nodes[key])
    finally:
        for alias in connections:
            connections[alias].close()
        with server.info.connect(autocommit=True) as admin:
            drop = pgsql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(pgsql.Identifier(dbname)))

alone = {}
for key in order.change:
    report = run_audit(AuditRequest(selection=Selection(keys=(key,)), config=config))
    alone[".".join(key)] = report.to_dict()

with open(sys.argv[2], "w") as out:
    json.dump({
        "change": change_report.to_dict(),
        "alone": alone,
        "created_before": created_before,
        "plan": [".".join(k) for k in plan],
        "base": [".".join(k) for k in order.base],
        "audited": [".".join(k) for k in order.change],
    }, out)
"""


def run_cut(
    *,
    settings: str,
    change: Iterable[tuple[str, str]],
    production: dict[str, Any],
    scratch_url: str,
    tmp: Path,
    cwd: Path = ROOT,
    timeout: int = 1500,
) -> dict[str, Any]:
    """Audit ``change`` (plus what depends on it) as unapplied, then each alone."""
    spec = tmp / "spec.json"
    result = tmp / "result.json"
    spec.write_text(
        json.dumps(
            {
                "change": [list(k) for k in change],
                "production": production,
                "scratch_url": scratch_url,
            }
        )
    )
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings
    paths = [str(ROOT), str(ROOT / "sample_apps"), str(ROOT / "src"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.pop("MIGRATION_GUARD_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(spec), str(result)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(result.read_text())


def interleaved(data: dict[str, Any]) -> bool:
    """Does the plan order put a base migration of one app after a change migration
    of another (the order that once made old tables count as new)?"""
    audited = set(data["audited"])
    seen_change_apps: set[str] = set()
    for key in data["plan"]:
        app = key.split(".", 1)[0]
        if key in audited:
            seen_change_apps.add(app)
        elif seen_change_apps - {app}:
            return True
    return False


#: A timestamp literal: a default of timezone.now is evaluated when the migration runs.
_NOW = re.compile(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d)?'")


def _finding_key(finding: dict[str, Any], created: set[str]) -> str:
    """A finding as compared: without timings, and without the locks and rebuilt
    indexes it lists that the change created (alone, those are old relations)."""
    kept = {k: v for k, v in finding.items() if k not in ("duration_ms", "sizes")}
    kept["held"] = [lk for lk in finding.get("held", []) if lk["relation"] not in created]
    kept["rewrites"] = [r for r in finding["rewrites"] if r["relation"] not in created]
    kept["sql"] = [_NOW.sub("'<now>'", text) for text in finding["sql"]]
    return json.dumps(kept, sort_keys=True)


def _about_created(finding: dict[str, Any], created: set[str]) -> bool:
    return bool(
        finding.get("table") in created or {lk["relation"] for lk in finding["locks"]} & created
    )


def _trace_key(entry: dict[str, Any], created: set[str]) -> str | None:
    kept = {
        "index": entry["index"],
        "phase": entry["phase"],
        "locks": [lk for lk in entry["locks"] if lk["relation"] not in created],
        "rewrites": [
            r
            for r in entry["rewrites"]
            if r["table"] not in created and r["relation"] not in created
        ],
        "scans": [s for s in entry["scans"] if s["relation"] not in created],
        "method": entry["method"],
    }
    if not (kept["locks"] or kept["rewrites"] or kept["scans"]):
        return None
    return json.dumps(kept, sort_keys=True)


def compared(data: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(migrations compared, findings compared, differences) between the change's
    judgement of each migration and its judgement alone."""
    in_change = {f"{m['app_label']}.{m['name']}": m for m in data["change"]["migrations"]}
    problems: list[str] = []
    findings = 0
    for key, report in data["alone"].items():
        created = set(data["created_before"][key])
        (alone,) = [m for m in report["migrations"] if f"{m['app_label']}.{m['name']}" == key]
        inside = in_change.get(key)
        if inside is None:
            problems.append(f"{key}: not in the change's report")
            continue
        if inside["status"] != alone["status"]:
            problems.append(
                f"{key}: status {inside['status']} in the change, {alone['status']} alone"
            )
        want = sorted(
            _finding_key(f, created)
            for f in alone["findings"]
            if f["rule"] not in RUN_LEVEL and not _about_created(f, created)
        )
        got = sorted(
            _finding_key(f, created)
            for f in inside["findings"]
            if f["rule"] not in RUN_LEVEL and not _about_created(f, created)
        )
        findings += len(want)
        for text in sorted(set(want) - set(got)):
            problems.append(f"{key}: only alone: {text}")
        for text in sorted(set(got) - set(want)):
            problems.append(f"{key}: only in the change: {text}")
        want_trace = sorted(filter(None, (_trace_key(t, created) for t in alone["trace"])))
        got_trace = sorted(filter(None, (_trace_key(t, created) for t in inside["trace"])))
        if want_trace != got_trace:
            problems.append(f"{key}: trace differs:\n  alone  {want_trace}\n  change {got_trace}")
    return len(data["alone"]), findings, problems
