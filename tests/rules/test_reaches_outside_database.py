"""reaches-outside-database: statements that act on the server, not the migration's database.

The _err cases run on a throwaway cluster (where the audit connects as its
superuser, so every statement really runs, contained); the _ok cases on the
session's server.
"""

from __future__ import annotations

import pytest

from migration_guard.findings import Category, Severity
from migration_guard.postgres.embedded import embedded_bindir
from migration_guard.postgres.local import pick_bindir

from ..harness import Migration

RULE = "reaches-outside-database"
THROWAWAY = "embedded" if embedded_bindir() else ("local" if pick_bindir() else None)
needs_throwaway = pytest.mark.skipif(THROWAWAY is None, reason="no throwaway cluster available")

ITEM = (
    "migrations.CreateModel('Item', [('id', models.BigAutoField(primary_key=True)), "
    "('code', models.TextField(null=True))], options={'db_table': 'item'})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


REACHING = {
    "ALTER SYSTEM SET work_mem = '8MB'": "ALTER SYSTEM",
    "ALTER SYSTEM RESET work_mem": "ALTER SYSTEM",
    "COPY (SELECT 1) TO PROGRAM 'cat >/dev/null'": "TO PROGRAM runs a command",
    "COPY item FROM '/dev/null'": "reads a file of the server",
    "CREATE ROLE migration_guard_rule_test": "CREATE ROLE",
    "DROP ROLE migration_guard_rule_test": "DROP ROLE",
    "SELECT pg_read_file('PG_VERSION')": "pg_read_file()",
    "SELECT pg_ls_dir('.')": "pg_ls_dir()",
    "LOAD 'plpgsql'": "LOAD",
    "DO $$ BEGIN EXECUTE 'COPY (SELECT 2) TO PROGRAM ''cat >/dev/null'''; END $$": "TO PROGRAM",
    "CREATE FUNCTION item_export() RETURNS void LANGUAGE sql AS "
    "$f$ SELECT lo_export(0, '/dev/null') $f$": "lo_export()",
}


@needs_throwaway
def test_reaches_outside_database_err(make_app):
    runpython = (
        "migrations.RunPython(lambda apps, schema_editor: "
        "schema_editor.connection.cursor().execute(\"SELECT pg_stat_file('PG_VERSION')\"), "
        "migrations.RunPython.noop)"
    )
    app = make_app([ITEM], Migration([*map(runsql, REACHING), runpython], atomic=False))
    report = app.audit(postgres=THROWAWAY, database_url=None)
    assert [m.status for m in report.migrations] == ["audited"], report.migrations[0].error
    findings = app.findings(report, RULE)
    by_sql = {f.sql[0]: f for f in findings}
    for sql, words in REACHING.items():
        assert sql in by_sql, sql
        assert words in by_sql[sql].message, (sql, by_sql[sql].message)
    assert any("pg_stat_file()" in f.message for f in findings)  # run by RunPython
    for finding in findings:
        assert finding.severity is Severity.ERROR
        assert finding.category is Category.SECURITY
    assert len(findings) == len(REACHING) + 1


@needs_throwaway
def test_databases_created_and_dropped_err(make_app):
    ops = [
        runsql("CREATE DATABASE migration_guard_rule_db"),
        runsql("DROP DATABASE migration_guard_rule_db"),
    ]
    app = make_app([ITEM], Migration(ops, atomic=False))
    report = app.audit(postgres=THROWAWAY, database_url=None)
    messages = sorted(f.message.split(":")[0] for f in app.findings(report, RULE))
    assert messages == [
        "CREATE DATABASE acts on another database of the server",
        "DROP DATABASE acts on another database of the server",
    ]


def test_work_inside_the_database_ok(make_app):
    app = make_app(
        [ITEM],
        [
            runsql("INSERT INTO item (code) VALUES ('ALTER SYSTEM SET work_mem = 1')"),
            runsql("GRANT SELECT ON item TO PUBLIC"),
            runsql("CREATE TABLE item_copy (lo_import int, pg_read_file text)"),
            runsql(
                "CREATE FUNCTION item_count() RETURNS bigint LANGUAGE sql AS "
                "$$ SELECT count(*) FROM item $$"
            ),
        ],
    )
    report = app.audit()
    assert [m.status for m in report.migrations] == ["audited"], report.migrations[0].error
    assert app.findings(report, RULE) == []
