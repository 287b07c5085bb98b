"""truncate-table: TRUNCATE of a table in use."""

from __future__ import annotations

from migration_guard.findings import Category, Evidence, Severity

RULE = "truncate-table"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
LINE = (
    "migrations.CreateModel('Line', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'lines'})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_truncate_err(make_app):
    app = make_app([ORDER], [runsql("TRUNCATE orders")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.ERROR
    assert finding.category is Category.DATA
    assert finding.table == "orders"
    assert "every row of orders" in finding.message
    assert finding.evidence is Evidence.OBSERVED
    assert ("orders", "AccessExclusiveLock") in [(x.relation, x.mode) for x in finding.locks]


def test_truncate_several_tables_err(make_app):
    app = make_app([ORDER, LINE], [runsql("TRUNCATE TABLE ONLY orders, public.lines CASCADE")])
    report = app.audit()
    findings = app.findings(report, RULE)
    assert sorted(f.table for f in findings) == ["lines", "orders"]
    assert all(f.evidence is Evidence.OBSERVED for f in findings)


def test_truncate_of_a_table_created_in_the_change_only(make_app):
    app = make_app([ORDER], [LINE, runsql("TRUNCATE lines, orders")])
    report = app.audit()
    assert [f.table for f in app.findings(report, RULE)] == ["orders"]


def test_delete_with_where_ok(make_app):
    app = make_app([ORDER], [runsql("DELETE FROM orders WHERE qty IS NULL")])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [runsql("TRUNCATE orders")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
