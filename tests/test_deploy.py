"""The deploy guard on real PostgreSQL: ``manage.py migrate`` with another connection in the way.

Every test runs the project's real ``manage.py migrate`` in a subprocess, on a
database of its own, while a second connection (``reports-worker``) holds a
lock that conflicts with what the migration needs. The issue's "Done when"
items, one by one:

* a retry succeeds once the holder commits: ``test_atomic_retry_succeeds_once_the_holder_commits``
* it gives up after N tries with the documented exit and message:
  ``test_gives_up_after_lock_retries_with_exit_75``
* an atomic migration is never half-applied:
  ``test_atomic_migration_is_never_half_applied``,
  ``test_atomic_migration_and_its_record_commit_in_one_transaction``
* a non-atomic migration resumes at the failed statement:
  ``test_non_atomic_migration_resumes_at_the_failed_statement``
* the INVALID index of a failed concurrent build is dropped and the build retried:
  ``test_invalid_index_of_a_failed_concurrent_build_is_dropped_and_rebuilt``
* the blocker report names the holder's application_name and transaction age:
  ``test_blocker_report_names_application_and_transaction_age``
* statement_timeout ends a too-long concurrent build:
  ``test_statement_timeout_ends_a_too_long_concurrent_build``
* signals during a retry pause leave no lock held and nothing half-applied:
  ``test_signal_during_a_retry_pause_leaves_no_lock_and_nothing_half_applied``
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from migration_guard.postgres.base import ConnectionInfo

from .deploy_project import (
    HOLDER_APP,
    SLOW_FUNCTION,
    DeployProject,
    Holder,
    create_database,
    drop_database,
)
from .goldens import assert_golden
from .reliability import CREATE_ITEM, wait_until

#: Short timings: 4 attempts waiting 50ms, 100ms, 200ms, 400ms, pauses of 50-150ms.
FAST = {"lock_timeout": "400ms", "lock_retries": 3, "lock_retry_backoff": ["100ms"]}
ADD_FLAG = "migrations.AddField('item', 'flag', models.BooleanField(default=False))"
CREATE_NOTE = (
    "migrations.CreateModel('Note', [('id', models.BigAutoField(primary_key=True)), "
    "('item', models.ForeignKey('inv.item', on_delete=models.CASCADE))])"
)
#: A concurrent build as the planner writes it: its own lock_timeout, IF NOT EXISTS, RESET.
PLANNER_INDEX = [
    "migrations.RunSQL(sql=\"SET lock_timeout = '300ms'\", reverse_sql='RESET lock_timeout')",
    "migrations.RunSQL("
    'sql=\'CREATE INDEX CONCURRENTLY IF NOT EXISTS "inv_item_code_idx" ON "inv_item" ("code")\','
    " reverse_sql='DROP INDEX CONCURRENTLY IF EXISTS \"inv_item_code_idx\"')",
    "migrations.RunSQL(sql='RESET lock_timeout', reverse_sql=\"SET lock_timeout = '300ms'\")",
]
#: Django's own concurrent build.
DJANGO_INDEX = [
    "AddIndexConcurrently('item', models.Index(fields=['code'], name='inv_item_code_idx'))"
]
DJANGO_INDEX_IMPORT = "from django.contrib.postgres.operations import AddIndexConcurrently"


@pytest.fixture(scope="session")
def item_template(pg_server, tmp_path_factory) -> Iterator[str]:
    """A database where ``inv.0001`` (the table inv_item) is applied, to copy per test."""
    info = create_database(pg_server.info)
    try:
        DeployProject(tmp_path_factory.mktemp("template"), info).item_table()
        yield info.dbname
    finally:
        drop_database(pg_server.info, info)


@pytest.fixture
def database(pg_server, item_template) -> Iterator[ConnectionInfo]:
    info = create_database(pg_server.info, template=item_template)
    try:
        yield info
    finally:
        drop_database(pg_server.info, info)


@pytest.fixture
def project(tmp_path, database) -> DeployProject:
    project = DeployProject(tmp_path / "project", database, guard=FAST)
    project.migration("0001_initial", [CREATE_ITEM])
    return project


@pytest.fixture
def holder(project) -> Iterator[Holder]:
    holder = Holder(project)
    try:
        yield holder
    finally:
        holder.close()


def _lines(text: str, tag: str) -> list[str]:
    return [line for line in text.splitlines() if f"migration_guard: {tag}" in line]


def _assert_idle_without_locks(project: DeployProject) -> None:
    """The migrate process's backend, right now: idle (no transaction), holding no lock."""
    backends = project.migrate_backend()
    assert len(backends) == 1, backends
    pid, state = backends[0]
    assert state == "idle", state
    assert project.locks_of(pid) == []


# -- atomic migrations ------------------------------------------------------------------------
def test_atomic_retry_succeeds_once_the_holder_commits(project, holder):
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")  # ACCESS SHARE, kept: ADD COLUMN must wait
    running = project.start("inv")
    running.wait_for("retrying: inv.0002_flag rolled back")
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert _lines(result.stderr, "lock timeout: inv.0002_flag waited 50ms")
    assert "applied after retry: inv.0002_flag on attempt 2 of 4" in result.stderr
    assert project.applied() == ["0001_initial", "0002_flag"]
    assert "flag" in project.columns()
    # Django's progress line is printed again after the guard's lines broke it.
    assert result.stdout.endswith("  Applying inv.0002_flag...\n  Applying inv.0002_flag... OK\n")


def test_gives_up_after_lock_retries_with_exit_75(project, holder):
    # Waits long enough for the watcher to sample each (a quarter of a wait apart).
    project.write_settings({**FAST, "lock_timeout": "1600ms", "lock_retries": 2})
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    result = project.migrate("inv")
    assert result.returncode == 75, result.output
    timeouts = _lines(result.stderr, "lock timeout: inv.0002_flag")
    # Escalating waits, the last one the whole lock_timeout.
    assert [re.search(r"waited (\S+)", line)[1] for line in timeouts] == ["200ms", "566ms", "1.6s"]
    assert len(_lines(result.stderr, "retrying: inv.0002_flag")) == 2
    assert len(_lines(result.stderr, "blocked by pid")) == 3
    assert result.stderr.rstrip().splitlines()[-1] == (
        "CommandError: gave up: inv.0002_flag could not get its locks in 3 attempt(s) "
        "(lock_retries = 2). Nothing of it is applied and it is not recorded in "
        "django_migrations; the migrations before it are applied. The 'blocked by' lines "
        "above name the transactions in the way: let them finish (or end them), then run "
        "migrate again."
    )
    assert project.applied() == ["0001_initial"]
    assert "flag" not in project.columns()
    assert_golden("deploy/gave_up.txt", _normalise(result.stderr, holder.pid))


def _normalise(stderr: str, holder_pid: int) -> str:
    """Golden text: the holder's pid, ages and jittered pauses vary from run to run."""
    text = stderr.replace(f"pid {holder_pid}:", "pid <holder>:")
    text = re.sub(r"a [\d.]+ (ms|s) transaction", "a <age> transaction", text)
    text = re.sub(r" in \d+ms with", " in <pause> with", text)
    return re.sub(r"user \w+\)", "user <user>)", text)


def test_atomic_migration_is_never_half_applied(project, holder):
    # A new table, a row, then the column that needs inv_item's ACCESS EXCLUSIVE lock.
    project.write_settings({**FAST, "lock_retry_backoff": ["2s"], "lock_retries": 1})
    project.migration(
        "0002_note_and_flag",
        [
            CREATE_NOTE,
            "migrations.RunSQL(\"INSERT INTO inv_item (code) VALUES ('marker')\", "
            "migrations.RunSQL.noop)",
            ADD_FLAG,
        ],
    )
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv")
    running.wait_for("retrying: inv.0002_note_and_flag rolled back")
    # In the pause: nothing of the migration is there, and its backend holds nothing.
    _assert_idle_without_locks(project)
    assert not project.table_exists("inv_note")
    assert project.query("SELECT count(*) FROM inv_item WHERE code = 'marker'") == [(0,)]
    assert project.applied() == ["0001_initial"]
    result = running.finish()
    assert result.returncode == 75, result.output
    assert not project.table_exists("inv_note")
    assert project.query("SELECT count(*) FROM inv_item WHERE code = 'marker'") == [(0,)]
    assert "flag" not in project.columns()
    assert project.applied() == ["0001_initial"]


def test_atomic_migration_and_its_record_commit_in_one_transaction(project, holder):
    """The foreign key is deferred SQL, run at the end: there the wait happens, and the
    migration's row in django_migrations is written by the same transaction as its table."""
    project.migration("0002_note", [CREATE_NOTE])
    holder.run("LOCK TABLE inv_item IN ROW EXCLUSIVE MODE")  # a writer: the FK must wait
    running = project.start("inv")
    line = running.wait_for("lock timeout: inv.0002_note")
    assert "FOREIGN KEY" in line
    _assert_idle_without_locks(project)
    assert not project.table_exists("inv_note")
    assert project.applied() == ["0001_initial"]
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    [(table_xid,)] = project.query(
        "SELECT xmin::text FROM pg_class WHERE oid = 'inv_note'::regclass"
    )
    [(record_xid,)] = project.query(
        "SELECT xmin::text FROM django_migrations WHERE app = 'inv' AND name = '0002_note'"
    )
    assert record_xid == table_xid


def test_backwards_migration_is_retried_too(project, holder):
    project.migration("0002_flag", [ADD_FLAG])
    assert project.migrate("inv").returncode == 0
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv", "0001")
    running.wait_for("retrying: inv.0002_flag (backwards) rolled back")
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert "flag" not in project.columns()
    assert project.applied() == ["0001_initial"]


# -- non-atomic migrations --------------------------------------------------------------------
def test_non_atomic_migration_resumes_at_the_failed_statement(project, holder):
    project.migration(
        "0002_steps",
        [
            "migrations.RunSQL('CREATE TABLE inv_log (step int)', migrations.RunSQL.noop)",
            "migrations.RunSQL('INSERT INTO inv_log VALUES (1)', migrations.RunSQL.noop)",
            "migrations.RunSQL('ALTER TABLE inv_item ADD COLUMN flag boolean', "
            "migrations.RunSQL.noop)",
            "migrations.RunSQL('INSERT INTO inv_log VALUES (2)', migrations.RunSQL.noop)",
        ],
        atomic=False,
    )
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv")
    line = running.wait_for("retrying: inv.0002_steps statement 3")
    assert "the 2 statement(s) before it stay done and are not repeated" in line
    _assert_idle_without_locks(project)
    assert project.query("SELECT step FROM inv_log") == [(1,)]
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert "applied after retry: inv.0002_steps statement 3 on attempt 2 of 4" in result.stderr
    assert project.query("SELECT step FROM inv_log ORDER BY step") == [(1,), (2,)]
    assert "flag" in project.columns()
    assert project.applied() == ["0001_initial", "0002_steps"]


def test_atomic_operation_of_a_non_atomic_migration_is_retried_whole(project, holder):
    code = """
def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("INSERT INTO inv_log VALUES (1)")
        cursor.execute("ALTER TABLE inv_item ADD COLUMN flag boolean")
"""
    project.migration(
        "0002_mixed",
        [
            "migrations.RunSQL('CREATE TABLE inv_log (step int)', migrations.RunSQL.noop)",
            "migrations.RunPython(forwards, migrations.RunPython.noop, atomic=True)",
            "migrations.RunSQL('INSERT INTO inv_log VALUES (2)', migrations.RunSQL.noop)",
        ],
        atomic=False,
        imports=code,
    )
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv")
    running.wait_for("retrying: inv.0002_mixed operation 2 (RunPython) rolled back")
    _assert_idle_without_locks(project)
    assert project.table_exists("inv_log")  # statement 1 stays done
    assert project.query("SELECT step FROM inv_log") == []  # operation 2 rolled back whole
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert project.query("SELECT step FROM inv_log ORDER BY step") == [(1,), (2,)]
    assert project.applied() == ["0001_initial", "0002_mixed"]


def test_gives_up_on_a_non_atomic_statement_with_exit_75(project, holder):
    project.write_settings({**FAST, "lock_retries": 1})
    project.migration(
        "0002_steps",
        [
            "migrations.RunSQL('CREATE TABLE inv_log (step int)', migrations.RunSQL.noop)",
            "migrations.RunSQL('ALTER TABLE inv_item ADD COLUMN flag boolean', "
            "migrations.RunSQL.noop)",
        ],
        atomic=False,
    )
    holder.run("SELECT count(*) FROM inv_item")
    result = project.migrate("inv")
    assert result.returncode == 75, result.output
    assert "CommandError: gave up: inv.0002_steps statement 2 could not get its locks in 2 " in (
        result.stderr
    )
    assert "the 1 statement(s) before it are" in result.stderr
    assert project.table_exists("inv_log")
    assert project.applied() == ["0001_initial"]


def test_lock_timeout_in_a_transaction_the_migration_opened_is_not_retried(project, holder):
    project.write_settings({**FAST, "lock_retries": 0})
    project.migration(
        "0002_own_transaction",
        [
            "migrations.RunSQL(['BEGIN', 'ALTER TABLE inv_item ADD COLUMN flag boolean', "
            "'COMMIT'], migrations.RunSQL.noop)",
        ],
        atomic=False,
    )
    holder.run("SELECT count(*) FROM inv_item")
    result = project.migrate("inv")
    assert result.returncode == 75, result.output
    assert len(_lines(result.stderr, "lock timeout: inv.0002_own_transaction")) == 1
    assert _lines(result.stderr, f"blocked by pid {holder.pid}:")
    assert "CommandError: not retried: inv.0002_own_transaction hit lock_timeout inside" in (
        result.stderr
    )
    assert "retrying:" not in result.stderr
    assert "flag" not in project.columns()


# -- INVALID indexes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("operations", "imports", "timeout"),
    [
        pytest.param(PLANNER_INDEX, "", "its own lock_timeout", id="runsql-like-the-planner"),
        pytest.param(DJANGO_INDEX, DJANGO_INDEX_IMPORT, "50ms", id="AddIndexConcurrently"),
    ],
)
@pytest.mark.parametrize("blocker", ["writer", "old-snapshot"])
def test_invalid_index_of_a_failed_concurrent_build_is_dropped_and_rebuilt(
    project, holder, operations, imports, timeout, blocker
):
    project.migration("0002_code_index", operations, atomic=False, imports=imports)
    if blocker == "writer":
        # The build registers its index, waits for this writer and times out. The drop
        # must wait for it too (DROP INDEX CONCURRENTLY waits for the table's lockers):
        # it happens before the next attempt.
        holder.run("INSERT INTO inv_item (code) VALUES ('x')")
    else:
        # A snapshot elsewhere: the build's last wait (for older snapshots) times out;
        # nothing locks inv_item, so the drop goes through at once.
        holder.run("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        holder.run("SELECT count(*) FROM django_migrations")
    running = project.start("inv")
    line = running.wait_for("lock timeout: inv.0002_code_index statement")
    assert f"waited {timeout} for a lock" in line
    assert "CREATE INDEX CONCURRENTLY" in line
    running.wait_for(f"blocked by pid {holder.pid}: ")
    if blocker == "writer":
        running.wait_for("INVALID index not dropped: inv_item_code_idx on inv_item")
        running.wait_for("retrying: inv.0002_code_index statement")
        assert project.indexes()["inv_item_code_idx"] is False
    else:
        running.wait_for("dropped INVALID index: inv_item_code_idx on inv_item")
        running.wait_for("retrying: inv.0002_code_index statement")
        assert "inv_item_code_idx" not in project.indexes()  # dropped before the pause
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert (
        "dropped INVALID index: inv_item_code_idx on inv_item, left by the failed "
        "CREATE INDEX CONCURRENTLY"
    ) in result.stderr
    assert project.indexes()["inv_item_code_idx"] is True
    assert project.applied() == ["0001_initial", "0002_code_index"]


def test_invalid_index_an_earlier_deploy_left_is_dropped_before_the_build(project, holder):
    # An interrupted deploy left an INVALID inv_item_code_idx behind.
    holder.run("INSERT INTO inv_item (code) VALUES ('x')")
    with project.connect() as conn:
        conn.execute("SET lock_timeout = '100ms'")
        with pytest.raises(Exception, match="lock timeout"):
            conn.execute('CREATE INDEX CONCURRENTLY "inv_item_code_idx" ON inv_item (code)')
    holder.commit()
    assert project.indexes() == {"inv_item_pkey": True, "inv_item_code_idx": False}
    project.migration("0002_code_index", PLANNER_INDEX, atomic=False)
    # Without the guard, IF NOT EXISTS finds the name and skips: the index stays INVALID.
    plain = project.migrate("inv", "--no-guard")
    assert plain.returncode == 0, plain.output
    assert project.indexes()["inv_item_code_idx"] is False
    assert project.migrate("inv", "0001", "--no-guard").returncode == 0
    # Guarded, the INVALID index is dropped first and the build makes a valid one.
    holder.run("INSERT INTO inv_item (code) VALUES ('y')")
    holder.commit()
    with project.connect() as conn:
        conn.execute("SET lock_timeout = '100ms'")
        holder.run("INSERT INTO inv_item (code) VALUES ('z')")
        with pytest.raises(Exception, match="lock timeout"):
            conn.execute('CREATE INDEX CONCURRENTLY "inv_item_code_idx" ON inv_item (code)')
    holder.commit()
    result = project.migrate("inv")
    assert result.returncode == 0, result.output
    assert (
        "dropped INVALID index: inv_item_code_idx on inv_item, left by an earlier build that "
        "failed or was interrupted"
    ) in result.stderr
    assert project.indexes()["inv_item_code_idx"] is True


def test_statement_timeout_ends_a_too_long_concurrent_build(project):
    project.write_settings({**FAST, "statement_timeout": "800ms"})
    with project.connect() as conn:
        conn.execute(SLOW_FUNCTION)
        conn.execute("INSERT INTO inv_item (code) SELECT g::text FROM generate_series(1, 200) g")
    # 200 rows at 20ms each: a build of 4 s or more, cut at 800ms.
    project.migration(
        "0002_slow_index",
        [
            "migrations.RunSQL('CREATE INDEX CONCURRENTLY inv_item_slow ON inv_item "
            "(slow_id(id))', migrations.RunSQL.noop)"
        ],
        atomic=False,
    )
    started = time.monotonic()
    result = project.migrate("inv")
    assert result.returncode == 1, result.output
    assert time.monotonic() - started < 4 + 10  # not the whole build (subprocess: ~2 s)
    assert (
        "CommandError: statement_timeout: inv.0002_slow_index statement 1 ran longer than "
        "statement_timeout (800ms) and was ended: CREATE INDEX CONCURRENTLY inv_item_slow"
    ) in result.stderr
    assert (
        "dropped INVALID index: inv_item_slow on inv_item, left by the failed CREATE INDEX "
        "CONCURRENTLY"
    ) in result.stderr
    assert "retrying:" not in result.stderr
    assert "inv_item_slow" not in project.indexes()
    assert project.applied() == ["0001_initial"]


# -- who is in the way --------------------------------------------------------------------------
def test_blocker_report_names_application_and_transaction_age(project, holder):
    project.write_settings({**FAST, "lock_retries": 0})
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT code FROM inv_item WHERE code = 'secret-value-42' OR id = 4242")
    time.sleep(2.0)
    opened_s = time.monotonic() - (holder.opened_at or 0)
    result = project.migrate("inv")
    assert result.returncode == 75, result.output
    [line] = _lines(result.stderr, "blocked by")
    match = re.fullmatch(
        rf"migration_guard: blocked by pid {holder.pid}: a (?P<age>[\d.]+) s transaction from "
        rf"{HOLDER_APP} \(idle in transaction, user (?P<user>\S+)\), query: (?P<query>.*)",
        line,
    )
    assert match, line
    assert opened_s <= float(match["age"]) < opened_s + 30
    assert match["query"] == "SELECT code FROM inv_item WHERE code = ? OR id = ?"


def test_blocker_report_can_be_turned_off(project, holder):
    project.write_settings({**FAST, "lock_retries": 0, "blocker_report": False})
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    result = project.migrate("inv")
    assert result.returncode == 75, result.output
    assert _lines(result.stderr, "lock timeout: inv.0002_flag")
    assert "blocked by" not in result.stderr.replace("'blocked by' lines", "")
    assert HOLDER_APP not in result.stderr


# -- pre-flight ---------------------------------------------------------------------------------
def test_preflight_does_not_queue_behind_an_old_transaction(project, holder):
    # A long lock_timeout: had the migration asked for its lock, it would wait 20 s.
    project.write_settings(
        {
            "lock_timeout": "20s",
            "lock_retries": 1,
            "lock_retry_backoff": ["100ms"],
            "preflight_transaction_age": "1s",
        }
    )
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    time.sleep(1.5)
    started = time.monotonic()
    result = project.migrate("inv")
    assert time.monotonic() - started < 15
    assert result.returncode == 75, result.output
    preflight = _lines(result.stderr, "pre-flight: inv.0002_flag")
    assert len(preflight) == 2
    assert preflight[0].endswith(
        "did not queue ALTER TABLE ADD COLUMN behind 1 transaction(s) older than 1.0 s holding "
        "conflicting locks on inv_item (attempt 1 of 2)"
    )
    assert len(_lines(result.stderr, f"blocked by pid {holder.pid}: a ")) == 2
    assert "lock timeout:" not in result.stderr
    assert "flag" not in project.columns()


def test_preflight_lets_a_young_transaction_be_waited_for(project, holder):
    project.write_settings({**FAST, "preflight_transaction_age": "1min"})
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv")
    running.wait_for("lock timeout: inv.0002_flag")
    holder.commit()
    result = running.finish()
    assert result.returncode == 0, result.output
    assert "pre-flight:" not in result.stderr


# -- signals --------------------------------------------------------------------------------------
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("shape", ["atomic", "concurrent-index"])
def test_signal_during_a_retry_pause_leaves_no_lock_and_nothing_half_applied(
    project, holder, signum, shape
):
    project.write_settings({**FAST, "lock_retry_backoff": ["60s"]})
    if shape == "atomic":
        project.migration("0002_change", [CREATE_NOTE, ADD_FLAG])
        holder.run("SELECT count(*) FROM inv_item")
    else:
        project.migration("0002_change", DJANGO_INDEX, atomic=False, imports=DJANGO_INDEX_IMPORT)
        holder.run("INSERT INTO inv_item (code) VALUES ('x')")
    running = project.start("inv")
    running.wait_for("retrying: inv.0002_change")
    _assert_idle_without_locks(project)
    if signum == signal.SIGINT:  # Ctrl-C in a shell reaches the whole process group
        os.killpg(running.child.pid, signum)
    else:
        os.kill(running.child.pid, signum)
    started = time.monotonic()
    result = running.finish(timeout=30)
    assert time.monotonic() - started < 10  # the 60 s pause is cut short
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.stderr
    message = result.stderr.rstrip().splitlines()[-1]
    assert message.startswith(
        f"CommandError: interrupted: signal {int(signum)} during the pause before retrying "
        "inv.0002_change: no lock is held, no transaction is open, and inv.0002_change is not "
        "recorded"
    )
    assert wait_until(lambda: project.migrate_backend() == [])
    assert project.applied() == ["0001_initial"]
    assert not project.table_exists("inv_note")
    assert "flag" not in project.columns()
    assert holder.conn.execute("SELECT 1").fetchone() == (1,)  # the holder was left alone
    if shape == "concurrent-index":
        # The writer kept the failed build's INVALID index from being dropped; the message
        # says so, and the next migrate drops it before it builds.
        assert message.endswith(
            ". The INVALID index(es) inv_item_code_idx could not be dropped yet: the next "
            "migrate drops them before it builds again."
        )
        assert project.indexes()["inv_item_code_idx"] is False
        holder.commit()
        again = project.migrate("inv")
        assert again.returncode == 0, again.output
        assert "dropped INVALID index: inv_item_code_idx on inv_item, left by an earlier" in (
            again.stderr
        )
        assert project.indexes()["inv_item_code_idx"] is True


def test_signal_during_a_lock_wait_takes_the_request_out_of_the_queue(project, holder):
    """A backend waiting for a lock does not notice its client is gone: the guard cancels
    the statement, so traffic does not stay queued behind it until lock_timeout."""
    project.write_settings({"lock_timeout": "60s", "lock_retries": 0})
    project.migration("0002_note_and_flag", [CREATE_NOTE, ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    running = project.start("inv")

    def waiting() -> bool:
        backends = project.migrate_backend()
        return bool(backends) and any(
            not granted for _, _, granted in project.locks_of(backends[0][0])
        )

    assert wait_until(waiting, timeout=30)
    os.kill(running.child.pid, signal.SIGTERM)
    result = running.finish(timeout=30)
    assert result.returncode == 2, result.output
    assert result.stderr.rstrip().endswith(
        "CommandError: interrupted: signal 15 while migrating: a statement in progress was "
        "cancelled and the session closed, so PostgreSQL rolled back any open transaction; "
        "the migration in progress is not recorded"
    )
    assert wait_until(lambda: project.migrate_backend() == [], timeout=10)
    assert project.query(
        "SELECT count(*) FROM pg_locks WHERE relation = 'inv_item'::regclass AND NOT granted"
    ) == [(0,)]
    assert not project.table_exists("inv_note")
    assert project.applied() == ["0001_initial"]


# -- settings, options, and Django's own migrate ---------------------------------------------
def test_without_deploy_settings_migrate_is_djangos(project, holder):
    project.write_settings({})
    project.migration("0002_flag", [ADD_FLAG])
    result = project.migrate("inv")
    assert result.returncode == 0, result.output
    assert result.stdout == (
        "Operations to perform:\n  Apply all migrations: inv\nRunning migrations:\n"
        "  Applying inv.0002_flag... OK\n"
    )
    assert result.stderr == ""


def test_command_line_options_override_the_settings(project, holder):
    project.write_settings({})
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    result = project.migrate(
        "inv", "--lock-timeout", "200ms", "--lock-retries", "1", "--lock-retry-backoff", "50ms,1s"
    )
    assert result.returncode == 75, result.output
    timeouts = _lines(result.stderr, "lock timeout: inv.0002_flag")
    assert [re.search(r"waited (\S+)", line)[1] for line in timeouts] == ["25ms", "200ms"]


@pytest.mark.parametrize(
    ("guard", "args", "message"),
    [
        (
            {"lock_timeout": "2 seconds"},
            (),
            "settings.MIGRATION_GUARD: lock_timeout must be a PostgreSQL duration",
        ),
        (
            {"lock_timeout": "2s", "statement_timeout": "1s"},
            (),
            "settings.MIGRATION_GUARD: statement_timeout (1s) must be longer than lock_timeout",
        ),
        ({}, ("--lock-retries", "-1"), "command line: lock_retries must be a whole number >= 0"),
        ({}, ("--lock-retries", "2"), "command line: lock_retries needs lock_timeout"),
    ],
)
def test_bad_settings_stop_migrate_with_exit_2(project, guard, args, message):
    project.write_settings(guard)
    result = project.migrate("inv", *args)
    assert result.returncode == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_check_warns_when_another_apps_migrate_wins(project):
    other = project.root / "othermig" / "management" / "commands"
    other.mkdir(parents=True)
    for folder in (other.parent.parent, other.parent, other):
        (folder / "__init__.py").write_text("")
    (other / "migrate.py").write_text(
        "from django.core.management.commands.migrate import Command  # noqa: F401\n"
    )
    project.write_settings(FAST, apps=["othermig", "migration_guard", "inv"])
    result = project.start("--fail-level", "WARNING", command="check").finish()
    assert result.returncode == 1, result.output
    assert "(migration_guard.W001) manage.py migrate is the command of 'othermig'" in result.stderr
    project.write_settings(FAST, apps=["migration_guard", "othermig", "inv"])
    result = project.start("--fail-level", "WARNING", command="check").finish()
    assert result.returncode == 0, result.output


def test_when_another_apps_migrate_wins_the_timeouts_still_apply(project, holder):
    """The pre_migrate fallback: no retries, no report, but no unbounded wait either."""
    other = project.root / "othermig" / "management" / "commands"
    other.mkdir(parents=True)
    for folder in (other.parent.parent, other.parent, other):
        (folder / "__init__.py").write_text("")
    (other / "migrate.py").write_text(
        "from django.core.management.commands.migrate import Command  # noqa: F401\n"
    )
    project.write_settings(
        {**FAST, "lock_timeout": "300ms"}, apps=["othermig", "migration_guard", "inv"]
    )
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")
    started = time.monotonic()
    result = project.start("inv", "--skip-checks").finish()
    assert time.monotonic() - started < 20
    assert result.returncode == 1, result.output
    assert "canceling statement due to lock timeout" in result.stderr
    assert "migration_guard:" not in result.stderr
    assert project.applied() == ["0001_initial"]


# -- transaction_timeout ----------------------------------------------------------------------
@pytest.fixture
def pg18_project(tmp_path, embedded_server) -> Iterator[DeployProject]:
    if embedded_server is None:
        pytest.skip("no PostgreSQL 17+ server (the embedded wheel) to run")
    info = create_database(embedded_server.info)
    try:
        project = DeployProject(tmp_path / "pg18", info)
        project.item_table()
        yield project
    finally:
        drop_database(embedded_server.info, info)


def test_transaction_timeout_ends_a_too_long_atomic_migration(pg18_project):
    project = pg18_project
    project.write_settings({**FAST, "transaction_timeout": "1s"})
    project.migration(
        "0002_slow",
        [
            "migrations.RunSQL(\"INSERT INTO inv_item (code) VALUES ('marker')\", "
            "migrations.RunSQL.noop)",
            "migrations.RunSQL('SELECT pg_sleep(5)', migrations.RunSQL.noop)",
        ],
    )
    result = project.migrate("inv")
    assert result.returncode == 1, result.output
    assert (
        "CommandError: transaction_timeout: inv.0002_slow kept a transaction open longer than "
        "transaction_timeout (1s) and PostgreSQL ended the session. Nothing of the migration "
        "is applied and it is not recorded."
    ) in result.stderr
    assert project.query("SELECT count(*) FROM inv_item WHERE code = 'marker'") == [(0,)]
    assert project.applied() == ["0001_initial"]


def test_transaction_timeout_is_reported_and_skipped_before_postgresql_17(project, pg_server):
    if pg_server.server_version >= 170000:
        pytest.skip("the session's server has transaction_timeout")
    project.write_settings({**FAST, "transaction_timeout": "1s"})
    project.migration("0002_flag", [ADD_FLAG])
    result = project.migrate("inv")
    assert result.returncode == 0, result.output
    [line] = _lines(result.stderr, "transaction_timeout: not set")
    assert "it needs PostgreSQL 17 or later and this server is 15." in line
    assert project.applied() == ["0001_initial", "0002_flag"]


def test_docs_name_every_test_this_module_claims():
    """The module docstring maps the issue's items to tests; each named test exists."""
    names = re.findall(r"``(test_\w+)``", __doc__ or "")
    assert len(names) >= 8
    assert all(name in globals() for name in names), [n for n in names if n not in globals()]
