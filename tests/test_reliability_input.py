"""Bad input through the real command: exit 2, a message that says what to do, nothing left.

Every case runs ``manage.py migration_audit`` in a subprocess on a throwaway
project (``tests/reliability.py``) with the session's server as
``--database-url``, and checks: exit status 2, the message, no traceback, no
scratch database of that process left on the server, nothing left in its
private TMPDIR.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from .reliability import CREATE_ITEM, Project, Result, project_fixture, scratch_databases

ADD_NOTE = "migrations.AddField('item', 'note', models.TextField(null=True))"


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def check_usage_error(project: Project, result: Result, pg_server, *needles: str) -> None:
    assert result.returncode == 2, result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert scratch_databases(pg_server.info, result.pid) == []
    assert list(project.tmpdir.iterdir()) == []


def make_projects(tmp_path, names):
    return {name: Project(tmp_path / name) for name in names}


CASES = {
    # name: (files to write (name, operations or text), command arguments, expected needles)
    "syntax-error": (
        [("0001_initial", [CREATE_ITEM]), ("0002_broken", "def broken(:\n")],
        ["inv", "0001"],
        ["SyntaxError in inv/migrations/0002_broken.py, line 1"],
    ),
    "import-error": (
        [
            ("0001_initial", [CREATE_ITEM]),
            ("0002_imports", "from nowhere_at_all import thing\n"),
        ],
        ["inv", "0001"],
        [
            "ModuleNotFoundError in inv/migrations/0002_imports.py, line 1: "
            "No module named 'nowhere_at_all'"
        ],
    ),
    "error-at-import": (
        [("0001_initial", [CREATE_ITEM]), ("0002_raises", "X = undefined_name\n")],
        ["--all"],
        ["NameError", "undefined_name", "inv/migrations/0002_raises.py"],
    ),
    "no-migration-class": (
        [("0001_initial", [CREATE_ITEM]), ("0002_empty", "OPERATIONS = []\n")],
        ["--all"],
        ["Migration 0002_empty in app inv has no Migration class"],
    ),
    "missing-dependency": (
        [("0001_initial", [CREATE_ITEM]), ("0002_note", [ADD_NOTE], ["0001_gone"])],
        ["--all"],
        ["depends on one that does not exist", "0001_gone", "Restore the missing migration"],
    ),
    "cycle": (
        [
            ("0001_initial", [CREATE_ITEM], ["0002_note"]),
            ("0002_note", [ADD_NOTE], ["0001_initial"]),
        ],
        ["--all"],
        ["dependencies form a cycle", "inv.0001_initial", "Break it"],
    ),
    "two-leaves": (
        [
            ("0001_initial", [CREATE_ITEM]),
            ("0002_left", [ADD_NOTE], ["0001_initial"]),
            ("0002_right", [], ["0001_initial"]),
        ],
        ["inv", "0001"],
        ["several leaf nodes", "0002_left, 0002_right", "makemigrations --merge"],
    ),
    "unknown-app": (
        [("0001_initial", [CREATE_ITEM])],
        ["invv"],
        ["no installed app with label 'invv'", "Did you mean inv?"],
    ),
    "unknown-migration": (
        [("0001_initial", [CREATE_ITEM]), ("0002_note", [ADD_NOTE])],
        ["inv", "0002_notes"],
        ["has no migration '0002_notes'", "Did you mean 0002_note", "showmigrations inv"],
    ),
}


def _write(project: Project, files) -> None:
    for spec in files:
        name, body, *after = spec
        if isinstance(body, str):
            project.migration(name, text=body)
        else:
            project.migration(name, body, after=after[0] if after else None)


def test_bad_input_is_a_clear_usage_error(tmp_path, pg_server, pg_url):
    projects = make_projects(tmp_path, CASES)
    try:
        for name, (files, _, _) in CASES.items():
            _write(projects[name], files)

        def run(name: str) -> Result:
            return projects[name].run(*CASES[name][1], "--database-url", pg_url)

        with ThreadPoolExecutor(4) as pool:
            results = dict(zip(CASES, pool.map(run, CASES), strict=True))
        failures = []
        for name, result in results.items():
            try:
                check_usage_error(projects[name], result, pg_server, *CASES[name][2])
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
        assert not failures, "\n\n".join(failures)
    finally:
        for project in projects.values():
            project.cleanup()


LATIN1 = '''\
# -*- coding: latin-1 -*-
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("inv", "0001_initial")]

    operations = [
        migrations.RunSQL(
            """
            -- a comment; with a semicolon and an apostrophe: it's
            /* a block comment; also with a semicolon */
            CREATE FUNCTION inv_label() RETURNS text
                AS $body$ SELECT 'caf\xe9; cr\xe8me'::text $body$ LANGUAGE sql;
            COMMENT ON TABLE inv_item IS 'Gr\xfc\xdfe; \xe0 bient\xf4t';
            UPDATE inv_item SET code = $$na\xefve; 'quoted'$$ -- no WHERE: a finding
            """,
            "DROP FUNCTION inv_label()",
        ),
    ]
'''


def test_latin1_migration_with_comments_dollar_quotes_and_several_statements_audits(
    project, pg_server, pg_url
):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_latin1", text=LATIN1.encode("latin-1"))
    out = project.root / "report.json"
    result = project.run(
        "inv", "0002", "--database-url", pg_url, "--format", "json", "--output", str(out), "-v", "2"
    )
    assert result.returncode == 1, result.output  # update-without-where is an error
    assert "Traceback" not in result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    [migration] = report["migrations"]
    assert migration["status"] == "audited", migration
    [finding] = [f for f in migration["findings"] if f["rule"] == "update-without-where"]
    assert finding["sql"] == [
        "UPDATE inv_item SET code = $$naïve; 'quoted'$$ -- no WHERE: a finding"
    ]
    assert scratch_databases(pg_server.info, result.pid) == []
    assert list(project.tmpdir.iterdir()) == []


def test_undecodable_migration_file_is_a_usage_error(project, pg_server, pg_url):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_bytes",
        text=LATIN1.replace("# -*- coding: latin-1 -*-\n", "").encode("latin-1"),
    )
    result = project.run("--all", "--database-url", pg_url)
    check_usage_error(
        project,
        result,
        pg_server,
        "SyntaxError in inv/migrations/0002_bytes.py",
        "'utf-8' codec can't decode byte 0xe9",
        "declare its encoding on its first line",
    )


CONFIG_CASES = {
    # name: (pyproject.toml text or None, MIGRATION_GUARD, extra arguments, expected needles)
    "unknown-rule": (
        '[tool.migration_guard.rules]\nadd-index-nonconcurrent = "off"\n',
        "{}",
        [],
        [
            "[tool.migration_guard] in ",
            "pyproject.toml: rules: unknown rule id 'add-index-nonconcurrent'",
            "did you mean add-index-non-concurrent",
        ],
    ),
    "unknown-severity": (
        None,
        '{"rules": {"remove-field": "loud"}}',
        [],
        ["settings.MIGRATION_GUARD: rules.remove-field: unknown severity 'loud'"],
    ),
    "malformed-pyproject": (
        "[tool.migration_guard\nfail-on = 'error'\n",
        "{}",
        [],
        ["pyproject.toml is not valid TOML", "line 1"],
    ),
    "pyproject-not-a-table": (
        "[tool]\nmigration_guard = 3\n",
        "{}",
        [],
        ["pyproject.toml: [tool.migration_guard] must be a table"],
    ),
    "bad-database-url": (
        None,
        "{}",
        ["--database-url", "postgresql://me:pw-in-url@db.example:notaport/x"],
        ["--database-url is not a valid PostgreSQL URL", "postgresql://me@db.example/x"],
    ),
    "unknown-alias": (
        None,
        "{}",
        ["--database", "replica"],
        ["--database 'replica' is not in settings.DATABASES (known aliases: default)"],
    ),
    "bad-stats-url": (
        None,
        "{}",
        ["--stats-url", "postgresql://me:pw-in-url@db.example:notaport/x"],
        ["--stats-url is not a valid PostgreSQL URL", "postgresql://me@db.example/x"],
    ),
}


def test_bad_configuration_is_named_by_the_command(tmp_path, pg_server, pg_url):
    projects = {
        name: Project(tmp_path / name, guard=guard)
        for name, (_, guard, _, _) in CONFIG_CASES.items()
    }
    try:
        for name, (pyproject, _, _, _) in CONFIG_CASES.items():
            projects[name].migration("0001_initial", [CREATE_ITEM])
            if pyproject is not None:
                (projects[name].root / "pyproject.toml").write_text(pyproject)

        def run(name: str) -> Result:
            args = CONFIG_CASES[name][2]
            if "--database-url" not in args:
                args = [*args, "--database-url", pg_url]
            return projects[name].run("inv", "0001", *args)

        with ThreadPoolExecutor(4) as pool:
            results = dict(zip(CONFIG_CASES, pool.map(run, CONFIG_CASES), strict=True))
        failures = []
        for name, result in results.items():
            try:
                check_usage_error(projects[name], result, pg_server, *CONFIG_CASES[name][3])
                assert "pw-in-url" not in result.output
            except AssertionError as exc:
                failures.append(f"{name}: {exc}")
        assert not failures, "\n\n".join(failures)
    finally:
        for project in projects.values():
            project.cleanup()
