"""vacuum-full: VACUUM FULL rewrites the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from migration_guard.findings import Evidence, Severity

from ..harness import Migration

RULE = "vacuum-full"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_vacuum_full_err(make_app):
    app = make_app([ORDER], Migration([runsql("VACUUM FULL orders")], atomic=False))
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.ERROR
    assert finding.table == "orders"
    assert "orders" in finding.message
    assert finding.evidence is Evidence.OBSERVED
    assert ("orders", "AccessExclusiveLock") in [(x.relation, x.mode) for x in finding.locks]


def test_vacuum_full_option_list_in_an_atomic_migration_err(make_app):
    app = make_app([ORDER], [runsql("VACUUM (FULL, ANALYZE) orders")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "orders"
    assert "cannot run inside a transaction block" in finding.message
    assert app.findings(report, "migration-failed")


def test_vacuum_full_from_runpython_err(make_app):
    code = """
def vacuum(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute('VACUUM FULL orders')
"""
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunPython(vacuum, migrations.RunPython.noop, atomic=False)"],
            extra=code,
            atomic=False,
        ),
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "orders"


def test_plain_vacuum_ok(make_app):
    app = make_app([ORDER], Migration([runsql("VACUUM (ANALYZE) orders")], atomic=False))
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], Migration([runsql("VACUUM FULL orders")], atomic=False))
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
