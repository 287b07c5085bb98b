"""``--rehearse`` interrupted: no workload thread or connection outlives the audit.

A signal arrives at each stage of the rehearsal, made certain by watching the
server: while the tables are seeded (the seeding INSERT runs), while the
previous release's traffic runs around a migration (its connections are there
and the migration sleeps), and while the lock queue stands (a long read is
held and the migration waits for its lock).

* As a user runs it (a subprocess on the session's server): the command ends
  with exit status 2 and "interrupted ... cleaned up", no traceback, in
  seconds, and leaves no scratch database and no connection behind.
* In the audit's own process (``run_audit`` with the scratch database kept, so
  that dropping it cannot be what ends the connections): once the
  interrupt has come out, no worker thread is alive and the server has no
  connection of the rehearsal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.test.utils import override_settings

from migration_guard.conf import build_config
from migration_guard.discovery import Selection
from migration_guard.engine import AuditRequest, run_audit
from migration_guard.exceptions import Interrupted
from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.scratch import drop_database
from migration_guard.rehearse.workload import APPLICATION_NAME
from migration_guard.signals import terminating_raises

from .reliability import CREATE_ITEM, Project, project_fixture, scratch_databases, wait_until

STAGES = ("seed", "traffic", "queue")
SLEEP = "migrations.RunSQL('SELECT pg_sleep(120) /* mg-rehearse */', migrations.RunSQL.noop)"
ADD = "migrations.AddField('item', 'note', models.TextField(null=True))"


def stage_options(stage: str) -> dict[str, object]:
    if stage == "seed":
        return {"rehearse_rows": 1_500_000}  # long enough to be caught seeding
    if stage == "queue":
        return {"rehearse_rows": 200, "rehearse_long_read": "40s"}
    return {"rehearse_rows": 200}


def change(stage: str) -> list[str]:
    return [ADD, SLEEP] if stage == "traffic" else [ADD]


def activity(info: ConnectionInfo) -> list[tuple[str, str, str, str]]:
    """(application_name, state, wait_event_type, query) of every other backend."""
    try:
        with info.connect(autocommit=True, connect_timeout=2) as conn:
            rows = conn.execute(
                "SELECT coalesce(application_name, ''), coalesce(state, ''), "
                "coalesce(wait_event_type, ''), coalesce(query, '') FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname LIKE 'migration_guard_%%'"
            ).fetchall()
    except psycopg.Error:
        return []
    return [tuple(row) for row in rows]  # type: ignore[misc]


def reached(stage: str, info: ConnectionInfo) -> bool:
    rows = activity(info)
    if stage == "seed":
        return any("generate_series" in q and q.startswith("INSERT") for _, _, _, q in rows)
    workers = [r for r in rows if r[0] == APPLICATION_NAME]
    if stage == "traffic":
        return bool(workers) and any("mg-rehearse" in q for _, _, _, q in rows)
    readers = [r for r in rows if r[0] == f"{APPLICATION_NAME}-read" and "transaction" in r[1]]
    waiting = [r for r in rows if r[2] == "Lock" and "ALTER TABLE" in r[3]]
    return bool(workers and readers and waiting)


def rehearsal_backends(info: ConnectionInfo) -> list[tuple[str, str, str, str]]:
    return [r for r in activity(info) if r[0].startswith(APPLICATION_NAME)]


# --- as a user runs it ------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_stage_of_the_rehearsal_ends_the_audit_cleanly(
    project, pg_server, pg_url, stage, sig
):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_change", change(stage))
    options = stage_options(stage)
    args = ["inv", "0002", "--database-url", pg_url, "--rehearse"]
    args += ["--rehearse-rows", str(options["rehearse_rows"])]
    if "rehearse_long_read" in options:
        args += ["--rehearse-long-read", str(options["rehearse_long_read"])]
    child = project.start(*args)
    assert wait_until(
        lambda: child.poll() is None and reached(stage, pg_server.info), timeout=90
    ), f"never reached {stage}: {child.communicate()}"
    if sig == signal.SIGINT:
        os.killpg(child.pid, sig)
    else:
        child.send_signal(sig)
    started = time.monotonic()
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"the audit did not end:\n{out}\n{err}") from None
    assert time.monotonic() - started < 30, "it took long to clean up"
    assert child.returncode == 2, out + err
    assert f"interrupted by signal {int(sig)}; cleaned up" in err
    assert "Traceback" not in out + err
    assert scratch_databases(pg_server.info, child.pid) == []
    assert wait_until(lambda: rehearsal_backends(pg_server.info) == [], timeout=10)


# --- in the audit's own process ---------------------------------------------------------------


ITEM = (
    "migrations.CreateModel('Item', [('id', models.BigAutoField(primary_key=True)), "
    "('code', models.CharField(max_length=20, null=True))])"
)


@pytest.mark.parametrize(
    ("stage", "sig"),
    [("seed", signal.SIGINT), ("traffic", signal.SIGTERM), ("queue", signal.SIGINT)],
)
def test_nothing_of_the_rehearsal_outlives_an_interrupt(make_app, pg_server, pg_url, stage, sig):
    app = make_app([ITEM], change(stage))
    values = {"postgres": "url", "database_url": pg_url, "rehearse": True, **stage_options(stage)}
    me = os.getpid()
    before = set(d for d in scratch_databases(pg_server.info, me))

    def interrupt() -> None:
        if wait_until(lambda: reached(stage, pg_server.info), timeout=90):
            os.kill(me, sig)

    sender = threading.Thread(target=interrupt, daemon=True)
    expected = KeyboardInterrupt if sig == signal.SIGINT else Interrupted
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        config = build_config(values, django_settings={}, use_pyproject=False)
        request = AuditRequest(
            selection=Selection(keys=((app.label, app.names[-1]),)), config=config, keep=True
        )
        sender.start()
        with pytest.raises(expected), terminating_raises():
            run_audit(request)
    sender.join(timeout=5)
    try:
        # right away, before anything else could close them
        alive = [t.name for t in threading.enumerate() if t.name.startswith(APPLICATION_NAME)]
        assert alive == []
        assert wait_until(lambda: rehearsal_backends(pg_server.info) == [], timeout=5), (
            rehearsal_backends(pg_server.info)
        )
    finally:
        for name in set(scratch_databases(pg_server.info, me)) - before:
            drop_database(pg_server, name)
