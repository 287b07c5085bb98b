"""``--rehearse``: the previous release's traffic while each migration runs, measured.

Each test audits a throwaway app on the session's server with the rehearsal
on, and reads what the previous release's queries suffered: which failed and
with which error, how long they waited, whether the lock queue formed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from django.test.utils import override_settings

from migration_guard.comment.load import report_from_dict
from migration_guard.conf import Config, build_config
from migration_guard.discovery import Selection
from migration_guard.engine import AuditRequest, run_audit
from migration_guard.exceptions import ConfigurationError
from migration_guard.management.commands.migration_audit import Command
from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.scratch import PREFIX, drop_database
from migration_guard.rehearse.workload import APPLICATION_NAME
from migration_guard.report import render

from .harness import Migration

REPO = Path(__file__).resolve().parent.parent

ITEM = (
    "migrations.CreateModel('Item', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('code', models.CharField(max_length=40)), "
    "('qty', models.IntegerField()), "
    "('note', models.TextField(null=True))], options={'db_table': 'rh_item'})"
)
LINE = (
    "migrations.CreateModel('Line', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('item', models.ForeignKey('item', on_delete=models.CASCADE)), "
    "('amount', models.DecimalField(max_digits=10, decimal_places=2))], "
    "options={'db_table': 'rh_line'})"
)
#: Small and fast: the rehearsal's mechanics, not big tables.
FAST = {"rehearse": True, "rehearse_rows": 500, "rehearse_rate": 50.0}


def traffic_of(report, table: str):
    (found,) = [
        t for m in report.migrations if m.rehearsal for t in m.rehearsal.tables if t.table == table
    ]
    return found


def kinds(traffic) -> dict:
    return {k.kind: k for k in traffic.kinds}


# --- off by default, and what it costs -------------------------------------------------------


def test_the_rehearsal_is_off_by_default(make_app):
    assert Config().rehearse is False
    app = make_app([ITEM], ["migrations.RenameField('item', 'code', 'sku')"])
    report = app.audit()
    assert report.rehearsal is None
    assert all(m.rehearsal is None for m in report.migrations)
    (finding,) = app.findings(report, "rename-field")
    assert finding.evidence.value == "predicted" and finding.traffic == ()
    data = report.to_dict()
    assert "rehearsal" not in data and "rehearsal" not in data["migrations"][0]
    assert all("traffic" not in f for f in data["migrations"][0]["findings"])
    assert not any("--rehearse" in note for note in report.notes)


def test_the_command_offers_it_and_its_settings():
    parser = Command().create_parser("manage.py", "migration_audit")
    options = parser.parse_args(
        [
            "--rehearse",
            "--rehearse-rows",
            "2000",
            "--rehearse-connections",
            "2",
            "--rehearse-rate",
            "10",
            "--rehearse-threshold",
            "500ms",
            "--rehearse-long-read",
            "3s",
        ]
    )
    assert options.rehearse is True and options.rehearse_rows == 2000
    config = build_config(
        {
            "rehearse": options.rehearse,
            "rehearse_rows": options.rehearse_rows,
            "rehearse_connections": options.rehearse_connections,
            "rehearse_rate": options.rehearse_rate,
            "rehearse_threshold": options.rehearse_threshold,
            "rehearse_long_read": options.rehearse_long_read,
        },
        django_settings={},
        use_pyproject=False,
    )
    assert (config.rehearse_threshold, config.rehearse_long_read) == (0.5, 3.0)
    assert config.rehearse_connections == 2 and config.rehearse_rate == 10.0


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("rehearse_rows", 0, "a whole number >= 1"),
        ("rehearse_connections", 100, "at most 32"),
        ("rehearse_rate", 0, "more than 0"),
        ("rehearse_threshold", "0s", "more than 0"),
        ("rehearse_threshold", "soon", "a duration"),
        ("rehearse_long_read", "2min", 'at most "50s"'),
        ("rehearse", "yes", "true or false"),
    ],
)
def test_bad_settings_are_named(key, value, expected):
    with pytest.raises(ConfigurationError, match=expected) as caught:
        build_config({}, django_settings={key: value}, use_pyproject=False)
    assert key in str(caught.value) and "settings.MIGRATION_GUARD" in str(caught.value)


def test_it_needs_the_trace(make_app):
    app = make_app([ITEM], ["migrations.AddField('item', 'extra', models.IntegerField(null=True))"])
    with pytest.raises(ConfigurationError, match="--rehearse needs the trace"):
        app.audit(trace=False, **FAST)


def test_its_cost_is_in_the_report(make_app):
    app = make_app([ITEM], ["migrations.AddField('item', 'extra', models.IntegerField(null=True))"])
    report = app.audit(**FAST)
    summary = report.rehearsal
    assert summary is not None
    assert summary.migrations == 1 and summary.queries > 0 and summary.rows == 500
    assert summary.seconds >= summary.seed_seconds > 0
    (cost,) = [n for n in report.notes if n.startswith("--rehearse: the previous release")]
    assert "1 migration(s)" in cost and "the rehearsal cost" in cost and "seeding" in cost
    text = render(report, "text")
    assert "Note: --rehearse: the previous release's queries (4 connections at 50 queries/s" in text


# --- failures --------------------------------------------------------------------------------


def test_a_renamed_column_fails_the_previous_release_and_confirms_the_rule(make_app):
    app = make_app([ITEM, LINE], ["migrations.RenameField('item', 'code', 'sku')"])
    report = app.audit(**FAST)
    (finding,) = app.findings(report, "rename-field")
    assert finding.evidence.value == "observed"
    (traffic,) = finding.traffic
    assert traffic.table == "rh_item" and traffic.rows == 500
    assert traffic.operation is not None and traffic.operation.kind == "RenameField"
    by_kind = kinds(traffic)
    for kind in ("select-pk", "select-filtered"):
        # every query sent after the rename fails (those answered before it did not)
        assert by_kind[kind].failed >= 1
        assert by_kind[kind].errors[0][0] == (
            "ERROR: column rh_item.code does not exist (SQLSTATE 42703)"
        )
    for kind in ("insert", "update"):
        assert by_kind[kind].failed >= 1
        assert 'column "code" of relation "rh_item" does not exist' in by_kind[kind].errors[0][0]
    assert by_kind["delete"].failed == 0  # a DELETE names no column
    # the rule said it: no second finding for the same breakage
    assert app.findings(report, "observed-previous-release-failure") == []


def test_a_state_only_rename_fails_nothing(make_app):
    app = make_app(
        [ITEM],
        [
            "migrations.SeparateDatabaseAndState(state_operations=["
            "migrations.AlterField('item', 'code', models.CharField(max_length=40, "
            "db_column='code')), migrations.RenameField('item', 'code', 'sku')])"
        ],
    )
    report = app.audit(**FAST)
    traffic = traffic_of(report, "rh_item")
    assert traffic.queries >= 5 and traffic.failed == 0  # each kind once after it, at least
    assert app.rules(report) == []


def test_not_null_without_a_database_default_fails_the_inserts_only(make_app):
    app = make_app([ITEM], ["migrations.AddField('item', 'level', models.IntegerField(default=0))"])
    report = app.audit(**FAST)
    (finding,) = app.findings(report, "not-null-without-db-default")
    assert finding.evidence.value == "observed"
    by_kind = kinds(finding.traffic[0])
    assert {k for k, v in by_kind.items() if v.failed} == {"insert"}
    assert 'null value in column "level" of relation "rh_item"' in by_kind["insert"].errors[0][0]


def test_a_dropped_table_fails_every_query(make_app):
    app = make_app([ITEM], ["migrations.DeleteModel('item')"])
    report = app.audit(**FAST)
    (finding,) = app.findings(report, "remove-model")
    assert finding.evidence.value == "observed"
    traffic = finding.traffic[0]
    assert {k.kind for k in traffic.failing} == {
        "select-pk",
        "select-filtered",
        "insert",
        "update",
        "delete",
    }
    assert all('relation "rh_item" does not exist' in k.errors[0][0] for k in traffic.failing)


def test_what_failed_before_the_migration_is_not_counted(make_app):
    # Django's state knows a column the database lacks: the previous release's SELECTs
    # fail before the change already; the change (an index) is not to blame.
    ghost = (
        "migrations.SeparateDatabaseAndState(state_operations=["
        "migrations.AddField('item', 'ghost', models.IntegerField(null=True))])"
    )
    app = make_app(
        [ITEM],
        [ghost],
        ["migrations.AddIndex('item', models.Index(fields=['qty'], name='rh_item_qty'))"],
    )
    report = app.audit(3, **FAST)
    assert app.findings(report, "observed-previous-release-failure") == []
    traffic = traffic_of(report, "rh_item")
    assert traffic.failed == 0
    assert "select-pk" not in kinds(traffic)  # left out: it failed before
    (migration,) = report.migrations
    assert migration.rehearsal is not None
    assert any(
        "SELECT by primary key on rh_item failed already before the migration" in note
        and "ghost" in note
        for note in migration.rehearsal.notes
    )


def test_the_workload_s_own_duplicates_are_noted_not_counted(make_app):
    # Every seeded line has an item of its own; once each item may have one line only,
    # the workload's made-up INSERTs and UPDATEs (an existing item, picked at random)
    # collide with a seeded line. The previous release's code is not to blame.
    app = make_app(
        [ITEM, LINE],
        [
            "migrations.AddConstraint('line', models.UniqueConstraint(fields=['item'], "
            "name='rh_line_one_per_item'))"
        ],
    )
    report = app.audit(**FAST)
    (migration,) = report.migrations
    assert migration.status == "audited", (migration.error, report.notes)
    assert app.rules(report) == ["add-unique-constraint"]
    assert app.findings(report, "observed-previous-release-failure") == []
    traffic = traffic_of(report, "rh_line")
    assert traffic.failed == 0
    # the colliding queries were sent and answered: counted as queries, not as failures
    assert kinds(traffic)["insert"].queries >= 1 and kinds(traffic)["insert"].failed == 0
    assert migration.rehearsal is not None
    noted = [n for n in migration.rehearsal.notes if "unique constraint" in n]
    assert any(
        n.startswith("the workload's INSERT on rh_line hit a unique constraint") for n in noted
    )
    assert all("SQLSTATE 23505" in n and "not counted" in n for n in noted)


def test_a_table_created_earlier_in_the_change_gets_no_traffic(make_app):
    app = make_app(
        ["migrations.CreateModel('Other', [('id', models.BigAutoField(primary_key=True))])"],
        [ITEM],
        ["migrations.RenameField('item', 'code', 'sku')"],
    )
    report = app.audit(2, 3, **FAST)
    assert all(m.rehearsal is None for m in report.migrations)
    assert app.findings(report, "observed-previous-release-failure") == []


# --- waits -------------------------------------------------------------------------------------


def test_waits_match_the_work_that_held_the_lock(make_app):
    """An index build blocks the writes for as long as it lasts (reads go on), a rewrite
    blocks reads and writes; the concurrent build blocks neither."""
    index = "migrations.AddIndex('item', models.Index(fields=['code'], name='rh_item_code'))"
    concurrent = Migration(
        [
            "AddIndexConcurrently('item', models.Index(fields=['note'], name='rh_item_note'))",
        ],
        atomic=False,
        imports="from django.contrib.postgres.operations import AddIndexConcurrently",
    )
    rewrite = "migrations.AlterField('item', 'qty', models.BigIntegerField())"
    app = make_app([ITEM], [index], concurrent, [rewrite])
    report = app.audit(
        2,
        3,
        4,
        rehearse=True,
        rehearse_rows=150_000,
        rehearse_rate=100.0,
        rehearse_threshold="30s",
    )
    by_migration = {m.name: m for m in report.migrations}

    def work_ms(name: str) -> float:
        (seen,) = [t for t in by_migration[name].trace if t.index == 0]
        return seen.duration_ms

    def table(name: str):
        (t,) = by_migration[name].rehearsal.tables
        return t

    built, rewritten, concurrently = app.names[1], app.names[3], app.names[2]
    build = table(built)
    assert build.longest(reads=False) >= 0.5 * work_ms(built), (build, work_ms(built))
    assert build.longest(reads=True) < build.longest(reads=False)
    rewrite_traffic = table(rewritten)
    assert rewrite_traffic.longest(reads=True) >= 0.5 * work_ms(rewritten)
    assert rewrite_traffic.longest(reads=False) >= 0.5 * work_ms(rewritten)
    concurrent_traffic = table(concurrently)
    assert concurrent_traffic.longest(reads=False) < 0.5 * work_ms(concurrently)
    assert concurrent_traffic.over_threshold == 0
    # the build's traffic is measured on the index rule's finding
    (finding,) = [f for f in report.findings if f.rule == "add-index-non-concurrent"]
    assert finding.traffic == (build,)


def test_code_s_tables_get_traffic_when_the_caller_names_them(make_app, pg_url):
    """A RunPython's tables are unknown before it runs: no traffic, unless the caller (the
    planner, for its backfills) says which tables the code works on."""
    slow_update = Migration(
        ["migrations.RunPython(touch_every_row, migrations.RunPython.noop)"],
        extra=(
            "def touch_every_row(apps, schema_editor):\n"
            "    with schema_editor.connection.cursor() as cursor:\n"
            "        cursor.execute('UPDATE rh_item SET qty = qty + 1')\n"
            "        cursor.execute('SELECT pg_sleep(1.5)')\n"
        ),
    )
    app = make_app(
        [ITEM],
        ["migrations.AddField('item', 'extra', models.IntegerField(null=True))"],
        slow_update,
    )
    keys = ((app.label, app.names[1]), (app.label, app.names[2]))
    values = {**FAST, "postgres": "url", "database_url": pg_url}
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        config = build_config(values, django_settings={}, use_pyproject=False)
        blind = run_audit(AuditRequest(selection=Selection(keys=keys), config=config))
        told = run_audit(
            AuditRequest(
                selection=Selection(keys=keys),
                config=config,
                code_tables={keys[1]: frozenset({"rh_item"})},
            )
        )
    assert blind.migrations[1].rehearsal is None
    rehearsal = told.migrations[1].rehearsal
    assert rehearsal is not None
    (traffic,) = rehearsal.tables
    assert traffic.table == "rh_item"
    # the writes waited for the row locks the code held until its transaction committed
    assert traffic.longest(reads=False) >= 1000 and traffic.over_threshold >= 1
    assert traffic.longest(reads=True) < 1000  # row locks: reads go on


# --- the lock queue ------------------------------------------------------------------------


ADD_COLUMN = "migrations.AddField('item', 'extra', models.IntegerField(null=True))"


def test_the_lock_queue_without_lock_timeout_makes_the_previous_release_wait(make_app):
    app = make_app([ITEM], [ADD_COLUMN])
    report = app.audit(**FAST, rehearse_long_read="2s")
    (migration,) = report.migrations
    assert migration.status == "audited", (migration.error, report.notes)
    assert migration.rehearsal is not None and migration.rehearsal.lock_queue
    assert migration.rehearsal.migration_waited_ms >= 1000
    traffic = traffic_of(report, "rh_item")
    assert traffic.lock_queue
    # reads too: they queue behind the migration's ACCESS EXCLUSIVE request
    assert traffic.longest(reads=True) >= 1000 and traffic.longest(reads=False) >= 1000
    (finding,) = app.findings(report, "observed-blocked-traffic")
    assert "the lock queue" in finding.message and "lock_timeout" in finding.fix
    # the project sets none: the scratch connection's own timeout is not production's
    assert not any("migrations ran with lock_timeout" in note for note in report.notes)


def test_the_lock_queue_with_lock_timeout_fails_fast_and_nobody_waits(make_app):
    app = make_app([ITEM], [ADD_COLUMN])
    report = app.audit(**FAST, rehearse_long_read="3s", lock_timeout="200ms")
    (migration,) = report.migrations
    assert migration.status == "failed"
    (failed,) = app.findings(report, "migration-failed")
    assert "lock timeout" in failed.message
    traffic = traffic_of(report, "rh_item")
    assert traffic.longest_wait_ms < 1000 and traffic.over_threshold == 0
    assert app.findings(report, "observed-blocked-traffic") == []
    assert any("lock_timeout = 200ms" in note for note in report.notes)


# --- nothing outlives the audit ---------------------------------------------------------------


def _rehearsal_backends(info: ConnectionInfo) -> list[tuple[str, str]]:
    with info.connect(autocommit=True) as conn:
        return conn.execute(
            "SELECT datname, application_name FROM pg_stat_activity WHERE application_name LIKE %s",
            (f"{APPLICATION_NAME}%",),
        ).fetchall()


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(APPLICATION_NAME)]


def test_no_thread_and_no_connection_outlives_the_audit(make_app, pg_server, pg_url):
    app = make_app([ITEM], [ADD_COLUMN])
    config = {**FAST, "rehearse_long_read": "0.5s", "postgres": "url", "database_url": pg_url}
    with override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "migration_guard", app.label],
        MIGRATION_GUARD={},
    ):
        cfg = build_config(config, django_settings={}, use_pyproject=False)
        report = run_audit(
            AuditRequest(
                selection=Selection(keys=((app.label, app.names[-1]),)), config=cfg, keep=True
            )
        )
    assert report.rehearsal is not None and report.rehearsal.queries > 0
    assert _threads() == []
    # the kept scratch database was not dropped (which would end its connections): nothing of
    # the rehearsal is connected to it any more
    deadline = time.monotonic() + 5
    while _rehearsal_backends(pg_server.info) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rehearsal_backends(pg_server.info) == []
    with pg_server.info.connect(autocommit=True) as conn:
        kept = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{PREFIX}%",)
            ).fetchall()
        ]
    for name in kept:
        drop_database(pg_server, name)


# --- reports ------------------------------------------------------------------------------------


def test_the_json_report_follows_the_schema_and_reads_back(make_app):
    app = make_app([ITEM], ["migrations.RenameField('item', 'code', 'sku')"])
    report = app.audit(**FAST)
    data = json.loads(json.dumps(report.to_dict()))
    schema = json.loads((REPO / "docs" / "report.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["rehearsal"]["rows"] == 500
    assert data["migrations"][0]["rehearsal"]["tables"][0]["table"] == "rh_item"
    assert data["migrations"][0]["findings"][0]["traffic"][0]["failed"] >= 1
    assert report_from_dict(data).to_dict() == data  # migration-guard comment reads it back


def test_reports_show_the_measurements(make_app):
    app = make_app([ITEM], ["migrations.RenameField('item', 'code', 'sku')"])
    report = app.audit(**FAST)
    text = " ".join(render(report, "text").split())  # as one line: wrapping aside
    assert "waits previous release on rh_item (500 rows) during operations[0] RenameField" in text
    assert "fails SELECT by primary key" in text and "rh_item.code does not exist" in text
    markdown = render(report, "markdown")
    assert "**Rehearsal.**" in markdown and "| Failed queries |" in markdown
    assert "**Rehearsal:**" in markdown
    sarif = json.loads(render(report, "sarif"))
    (result,) = [r for r in sarif["runs"][0]["results"] if r["ruleId"] == "rename-field"]
    assert result["properties"]["traffic"][0]["table"] == "rh_item"
    assert "Rehearsal: previous release on rh_item" in result["message"]["text"]


# --- production's size ----------------------------------------------------------------------


@pytest.fixture
def production(pg_server):
    """A "production" database whose rh_item has 20,000 rows (for --stats-url)."""
    name = f"{PREFIX}stats_{int(time.time() * 1000) % 10**9}"
    with pg_server.info.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = pg_server.info.with_dbname(name)
    with info.connect(autocommit=True) as conn:
        conn.execute("CREATE TABLE rh_item (id bigint PRIMARY KEY, code text, qty int)")
        conn.execute("INSERT INTO rh_item SELECT g, 'c' || g, g FROM generate_series(1, 20000) g")
        conn.execute("ANALYZE rh_item")
    try:
        yield info.conninfo()
    finally:
        drop_database(pg_server, name)


def test_with_stats_url_the_tables_are_sized_and_the_work_is_scaled(make_app, production):
    app = make_app(
        [ITEM], ["migrations.AddIndex('item', models.Index(fields=['code'], name='rh_code'))"]
    )
    report = app.audit(rehearse=True, rehearse_rows=1000, rehearse_rate=50.0, stats_url=production)
    (finding,) = app.findings(report, "add-index-non-concurrent")
    (traffic,) = finding.traffic
    assert traffic.rows == 1000  # production's 20,000 scaled down to the ceiling
    estimate = traffic.estimate
    assert estimate is not None
    assert (estimate.production_rows, estimate.rehearsed_rows) == (20_000, 1000)
    assert (estimate.work, estimate.scaling) == ("index build", "n log n")
    # the index build's own time (the CREATE INDEX statement), scaled
    factor = 20_000 * math.log(20_000) / (1000 * math.log(1000))
    assert finding.duration_ms is not None
    assert math.isclose(estimate.seconds, finding.duration_ms / 1000 * factor, rel_tol=0.01)
    text = " ".join(render(report, "text").split())  # as one line: wrapping aside
    assert "at production's 20,000 rows the index build would take about" in text
    assert "(estimate, n log n)" in text
