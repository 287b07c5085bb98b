"""delete-without-where: a DELETE of every row of a table in use."""

from __future__ import annotations

from migration_guard.findings import Category, Evidence, Severity

RULE = "delete-without-where"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


VARIANTS = [
    "DELETE FROM orders",
    "DELETE FROM ONLY public.orders o USING (SELECT 1 AS x WHERE true) s",
    "WITH gone AS (DELETE FROM orders RETURNING id) SELECT count(*) FROM gone",
]


def test_delete_without_where_err(make_app):
    app = make_app([ORDER], [runsql(sql) for sql in VARIANTS])
    report = app.audit()
    findings = app.findings(report, RULE)
    assert [f.operation.index for f in findings] == list(range(len(VARIANTS)))
    for finding in findings:
        assert finding.severity is Severity.ERROR
        assert finding.category is Category.DATA
        assert finding.table == "orders"
        assert "every row of orders" in finding.message
        assert finding.evidence is Evidence.OBSERVED


def test_delete_with_where_ok(make_app):
    app = make_app([ORDER], [runsql("DELETE FROM orders WHERE qty IS NULL")])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [runsql("DELETE FROM orders")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
