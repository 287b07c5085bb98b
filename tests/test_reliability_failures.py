"""Migrations that fail on PostgreSQL are findings, and the run goes on.

RunSQL PostgreSQL rejects, RunPython that raises, a unique constraint that rows
seeded by an earlier RunPython violate, a RunPython whose second connection
waits on a lock the migration's own transaction holds: each is a
``migration-failed`` finding carrying PostgreSQL's (or Python's) own error; the
migrations that do not depend on it are audited, those that do are reported as
skipped. Run through the real command, on a project with five apps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .reliability import Project, project_fixture, scratch_databases

#: Audited in this order (--all follows the sorted leaf nodes): "abort" comes first.
APPS = ("abort", "inv", "sqlapp", "pyapp", "lockapp")

DUPLICATES = """
def forwards(apps, schema_editor):
    Item = apps.get_model("inv", "Item")
    Item.objects.create(code="dup")
    Item.objects.create(code="dup")
"""

RAISES = """
def forwards(apps, schema_editor):
    raise RuntimeError("the backfill exploded")
"""

SECOND_CONNECTION = """
def forwards(apps, schema_editor):
    from django.db import connections

    other = connections.create_connection(schema_editor.connection.alias)
    try:
        with other.cursor() as cursor:  # waits on the ACCESS EXCLUSIVE lock AddField holds
            cursor.execute("SELECT count(*) FROM lockapp_box")
    finally:
        other.close()
"""


TERMINATES = """
def forwards(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
"""


def _model(name: str) -> str:
    return (
        f"migrations.CreateModel('{name}', [('id', models.BigAutoField(primary_key=True)), "
        "('code', models.CharField(max_length=20, null=True))])"
    )


def write_project(project: Project) -> None:
    m = project.migration
    m("0001_initial", [_model("Item")])
    m("0002_duplicates", ["migrations.RunPython(forwards, migrations.RunPython.noop)"])
    (project.root / "inv" / "migrations" / "0002_duplicates.py").write_text(
        (project.root / "inv" / "migrations" / "0002_duplicates.py")
        .read_text()
        .replace("\n\nclass Migration", DUPLICATES + "\n\nclass Migration")
    )
    m(
        "0003_unique",
        ["migrations.AlterField('item', 'code', models.CharField(max_length=20, unique=True))"],
    )
    m("0004_note", ["migrations.AddField('item', 'note', models.TextField(null=True))"])

    m("0001_initial", [_model("Thing")], app="sqlapp")
    m(
        "0002_bad_sql",
        ["migrations.RunSQL('ALTER TABLE sqlapp_thing ADD COLUMN x nosuchtype', 'SELECT 1')"],
        app="sqlapp",
    )
    m(
        "0003_after",
        ["migrations.AddField('thing', 'n', models.IntegerField(null=True))"],
        app="sqlapp",
    )

    m("0001_raises", ["migrations.RunPython(forwards, migrations.RunPython.noop)"], app="pyapp")
    m("0002_after", [_model("Other")], app="pyapp")

    m("0001_initial", [_model("Box")], app="lockapp")
    m(
        "0002_waits",
        [
            "migrations.AddField('box', 'extra', models.IntegerField(null=True))",
            "migrations.RunPython(forwards, migrations.RunPython.noop)",
        ],
        app="lockapp",
    )
    m("0001_terminates", ["migrations.RunPython(forwards, migrations.RunPython.noop)"], app="abort")
    for app, name, code in (
        ("abort", "0001_terminates", TERMINATES),
        ("pyapp", "0001_raises", RAISES),
        ("lockapp", "0002_waits", SECOND_CONNECTION),
    ):
        path = project.root / app / "migrations" / f"{name}.py"
        path.write_text(
            path.read_text().replace("\n\nclass Migration", code + "\n\nclass Migration")
        )
    m(
        "0003_after",
        ["migrations.AddField('box', 'n', models.IntegerField(null=True))"],
        app="lockapp",
    )


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path, apps=APPS)


def _results(report):
    return {(m["app_label"], m["name"]): m for m in report["migrations"]}


def _failed(migration) -> str:
    assert migration["status"] == "failed", migration
    [finding] = [f for f in migration["findings"] if f["rule"] == "migration-failed"]
    assert finding["severity"] == "error"
    return finding["message"]


def test_failing_migrations_are_findings_and_the_run_goes_on(project, pg_server, pg_url):
    write_project(project)
    every, one = project.root / "all.json", project.root / "one.json"
    runs = (
        ("--all", "--format", "json", "--output", str(every)),
        ("inv", "0004", "--format", "json", "--output", str(one)),
    )
    with ThreadPoolExecutor(2) as pool:
        results = list(
            pool.map(
                lambda args: project.run(
                    *args, "--database-url", pg_url, MIGRATION_GUARD_SCRATCH_LOCK_TIMEOUT="1s"
                ),
                runs,
            )
        )
    for result in results:
        assert result.returncode == 1, result.output
        assert "Traceback" not in result.output
        assert scratch_databases(pg_server.info, result.pid) == []

    audited = _results(json.loads(every.read_text()))
    # a migration that kills its own connection: a finding, and the audit goes on
    # (everything below ran after it, on a new connection)
    assert next(iter(audited)) == ("abort", "0001_terminates")
    message = _failed(audited[("abort", "0001_terminates")])
    assert "terminating connection due to administrator command" in message
    # a unique constraint that rows seeded by an earlier RunPython violate
    assert audited[("inv", "0002_duplicates")]["status"] == "audited"
    message = _failed(audited[("inv", "0003_unique")])
    assert "could not create unique index" in message
    assert "DETAIL: Key (code)=(dup) is duplicated." in message
    assert "(SQLSTATE 23505)" in message
    # RunSQL that PostgreSQL rejects
    assert 'ERROR: type "nosuchtype" does not exist' in _failed(audited[("sqlapp", "0002_bad_sql")])
    # RunPython that raises
    assert "RuntimeError: the backfill exploded" in _failed(audited[("pyapp", "0001_raises")])
    # a lock wait longer than lock_timeout (the migration waits on itself)
    message = _failed(audited[("lockapp", "0002_waits")])
    assert "canceling statement due to lock timeout" in message
    assert "(SQLSTATE 55P03)" in message
    # dependants are skipped, saying why; independent migrations are audited
    for key, because in (
        (("inv", "0004_note"), "inv.0003_unique"),
        (("sqlapp", "0003_after"), "sqlapp.0002_bad_sql"),
        (("pyapp", "0002_after"), "pyapp.0001_raises"),
        (("lockapp", "0003_after"), "lockapp.0002_waits"),
    ):
        assert audited[key]["status"] == "skipped", audited[key]
        assert because in audited[key]["error"]
    for key in (("inv", "0001_initial"), ("sqlapp", "0001_initial"), ("lockapp", "0001_initial")):
        assert audited[key]["status"] == "audited", audited[key]

    # the failure is before the change: reported, and the change is skipped
    before = _results(json.loads(one.read_text()))
    assert list(before) == [("inv", "0003_unique"), ("inv", "0004_note")]
    assert "(before the change) failed" in _failed(before[("inv", "0003_unique")])
    assert before[("inv", "0004_note")]["status"] == "skipped"


# --- text the SQL reading code must survive ----------------------------------------------------
#
# Arbitrary text never crashes sqlfacts (tests/test_sqlfacts.py: hypothesis tests
# test_parse_never_raises_on_text, test_parse_never_raises_on_fragments,
# test_fragments_do_not_raise, test_pathological_text_is_fast). Here, hostile RunSQL
# goes through the whole audit: PostgreSQL rejects the first one, the rules read
# every operation's SQL (collected statically after the failure), and the report is
# a migration-failed finding, nothing else going wrong.

JUNK = [
    "SELECT 'never closed",
    "/* a comment never closed; DROP TABLE x",
    "$$ dangling dollar quote",
    "SELECT $a$ $b$ nested $b$ $a$; SELECT E'\\\\'' ;;; ALTER TABLE",
    "SELECT 1 /* \\x00 */",
    "ʕ•ᴥ•ʔ ; ;; UPDATE",
    'ALTER TABLE "unterminated identifier SET NOT NULL',
    "CREATE INDEX CONCURRENTLY ON",
    "-- only a comment",
    "",
]


def test_hostile_runsql_text_is_a_finding_not_a_crash(make_app):
    ops = [f"migrations.RunSQL({text!r}, migrations.RunSQL.noop)" for text in JUNK]
    order = "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True))])"
    for operations in (ops, list(reversed(ops))):
        app = make_app([order], operations)
        report = app.audit()
        [result] = report.migrations
        assert result.status == "failed", result
        assert result.operations == len(JUNK)
        [failed] = app.findings(report, "migration-failed")
        assert "ERROR: " in failed.message, failed.message


def test_operations_on_models_that_do_not_exist_are_findings(make_app):
    """What `migrate` would refuse at run time is a finding, not a crash of the audit."""
    order = "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True))])"
    for operation, needle in (
        ("migrations.AddField('ghost', 'n', models.IntegerField(null=True))", "ghost"),
        (
            "migrations.AddField('order', 'g', models.ForeignKey('ghost', models.CASCADE, "
            "null=True))",
            "ghost",
        ),
    ):
        app = make_app([order], [operation], ["migrations.DeleteModel('order')"])
        report = app.audit(2, 3)
        first, second = report.migrations
        assert first.status == "failed", first
        assert needle in (first.error or "").lower(), first.error
        assert second.status == "skipped", second


def test_the_scratch_lock_timeout_knob_is_checked(monkeypatch):
    from migration_guard.djangodb import LOCK_TIMEOUT_ENV, scratch_session_options
    from migration_guard.exceptions import ConfigurationError

    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "1500ms")
    assert "-c lock_timeout=1500ms" in scratch_session_options()
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "5s -c statement_timeout=1")
    with pytest.raises(ConfigurationError, match=LOCK_TIMEOUT_ENV):
        scratch_session_options()
    monkeypatch.delenv(LOCK_TIMEOUT_ENV)
    assert "-c lock_timeout=60s" in scratch_session_options()
