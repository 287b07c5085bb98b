"""Migrations that never end: a time limit per migration, and a heartbeat (issue 11, item 8).

``RunSQL("SELECT pg_sleep(100000)")``, ``RunPython`` with ``while True`` or a long
``time.sleep``: each used to hang the audit until something outside killed it.
Now each is stopped at ``--migration-timeout`` and reported as a
``migration-timeout`` finding naming the operation; the audit exits 1 as for a
failed migration, with nothing left running on the server and no scratch
database left behind. While a migration runs, stderr names it every
``MIGRATION_GUARD_HEARTBEAT_SECONDS`` (30 by default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from migration_guard.postgres.base import ConnectionInfo

from .reliability import (
    CREATE_ITEM,
    Project,
    postgres_processes_under,
    project_fixture,
    scratch_databases,
)
from .test_reliability_faults import SOURCE, needs_cluster

HANGS = {
    "pg_sleep": "migrations.RunSQL('SELECT pg_sleep(100000)', migrations.RunSQL.noop)",
    "while-true": (
        "migrations.RunPython(lambda apps, schema_editor: [None for _ in iter(int, 1)], "
        "migrations.RunPython.noop)"
    ),
    "time-sleep": (
        "migrations.RunPython(lambda apps, schema_editor: __import__('time').sleep(100000), "
        "migrations.RunPython.noop)"
    ),
    "sleep-in-a-try": (
        "migrations.RunPython(lambda apps, schema_editor: [__import__('time').sleep(1) "
        "for _ in iter(int, 1)], migrations.RunPython.noop)"
    ),
}
KINDS = {"pg_sleep": "RunSQL"}


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def _sleeping_backends(info: ConnectionInfo) -> int:
    with info.connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(100000)%%'"
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("hang", list(HANGS))
def test_a_migration_that_never_ends_is_stopped_and_reported(project, pg_server, pg_url, hang):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_hang",
        [
            "migrations.AddField('item', 'qty', models.IntegerField(null=True))",
            HANGS[hang],
            "migrations.AddField('item', 'note', models.TextField(null=True))",
        ],
    )
    out = project.root / "report.json"
    started = time.monotonic()
    result = project.run(
        "inv",
        "0002",
        "--database-url",
        pg_url,
        "--migration-timeout",
        "3s",
        "--format",
        "json",
        "--output",
        str(out),
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.output
    assert elapsed < 60, elapsed
    report = json.loads(out.read_text())
    [migration] = report["migrations"]
    assert migration["status"] == "failed"
    [finding] = [f for f in migration["findings"] if f["rule"] == "migration-timeout"]
    assert finding["severity"] == "error"
    assert finding["operation"]["index"] == 1
    assert "operations[1]" in finding["message"] and "inv.0002_hang" in finding["message"]
    assert "3 s" in finding["message"]
    assert not [f for f in migration["findings"] if f["rule"] == "migration-failed"]
    assert _sleeping_backends(pg_server.info) == 0
    assert scratch_databases(pg_server.info, result.pid) == []


@needs_cluster
def test_on_a_throwaway_cluster_nothing_is_left_running(project):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_hang", [HANGS["pg_sleep"]])
    result = project.run("inv", "0002", "--postgres", SOURCE, "--migration-timeout", "2s")
    assert result.returncode == 1, result.output
    assert "migration-timeout" in result.stdout
    assert project.leftover_folders() == []
    assert postgres_processes_under(project.tmpdir) == []


def test_a_migration_before_the_change_that_never_ends_is_stopped(project, pg_server, pg_url):
    project.migration("0001_initial", [CREATE_ITEM, HANGS["while-true"]])
    project.migration(
        "0002_after", ["migrations.AddField('item', 'qty', models.IntegerField(null=True))"]
    )
    out = project.root / "report.json"
    result = project.run(
        "inv",
        "0002",
        "--database-url",
        pg_url,
        "--migration-timeout",
        "2",
        "--format",
        "json",
        "--output",
        str(out),
        timeout=120,
    )
    assert result.returncode == 1, result.output
    report = json.loads(out.read_text())
    base = [m for m in report["migrations"] if m["name"] == "0001_initial"]
    assert base and "--migration-timeout" in base[0]["error"], report["migrations"]
    assert scratch_databases(pg_server.info, result.pid) == []


def test_the_heartbeat_names_the_running_migration(project, pg_url):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_slow", ["migrations.RunSQL('SELECT pg_sleep(3.5)', migrations.RunSQL.noop)"]
    )
    result = project.run(
        "inv", "0002", "--database-url", pg_url, MIGRATION_GUARD_HEARTBEAT_SECONDS="1"
    )
    assert result.returncode in (0, 1), result.output
    beats = [line for line in result.stderr.splitlines() if "still applying inv.0002_slow" in line]
    assert len(beats) >= 2, result.stderr
    quiet = project.run(
        "inv", "0002", "--database-url", pg_url, "-v", "0", MIGRATION_GUARD_HEARTBEAT_SECONDS="1"
    )
    assert "still applying" not in quiet.stderr


@pytest.mark.parametrize("value", ["soon", "-5", "10 parsecs"])
def test_a_bad_time_limit_is_named(project, value):
    project.migration("0001_initial", [CREATE_ITEM])
    result = project.run("inv", "0001", "--migration-timeout", value)
    assert result.returncode == 2, result.output
    assert "migration_timeout must be a duration" in result.stderr
    assert "Traceback" not in result.output


def test_the_watchdog_leaves_the_interpreter_as_it_found_it():
    """After a migration under the limit, no asynchronous-exception state is left behind.

    Clearing a pending exception with ``PyThreadState_SetAsyncExc(id, NULL)`` once
    left CPython's eval breaker set for good: every later bytecode took the slow
    path, and under a profiler (``benchmarks/run.py --profile``) the audit never
    ended. Here, blocks under the limit are followed by ordinary work, profiled.
    """
    import subprocess
    import sys

    code = (
        "import time\n"
        "from migration_guard.watchdog import Watchdog\n"
        "w = Watchdog(0, lambda event, data: None, lambda: None)\n"
        "for _ in range(3):\n"
        "    with w.limit(('app', '0001'), None):\n"
        "        time.sleep(0.01)\n"
        "print(sum(range(200000)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-c", code]
        if sys.version_info >= (3, 12)
        else [
            sys.executable,
            "-c",
            "import cProfile, sys; cProfile.run(sys.argv[1], '/dev/null')",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "19999900000" in done.stdout
