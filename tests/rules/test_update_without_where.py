"""update-without-where: an UPDATE of every row of a busy table in one transaction."""

from __future__ import annotations

from migration_guard.findings import Category, Evidence, Severity

RULE = "update-without-where"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


VARIANTS = [
    "UPDATE orders SET qty = 0",
    "UPDATE ONLY public.orders AS o SET qty = (SELECT 1 WHERE true)",
    "WITH z AS (SELECT 0 AS v) UPDATE orders SET qty = z.v FROM z",
]


def test_update_without_where_err(make_app):
    app = make_app([ORDER], [runsql(sql) for sql in VARIANTS])
    report = app.audit()
    findings = app.findings(report, RULE)
    assert [f.operation.index for f in findings] == list(range(len(VARIANTS)))
    for finding in findings:
        assert finding.severity is Severity.ERROR
        assert finding.category is Category.LOCKING
        assert finding.table == "orders"
        assert "every row of orders" in finding.message
        # The trace saw the full scan.
        assert finding.evidence is Evidence.OBSERVED
        assert "orders" in finding.scanned


def test_update_with_where_ok(make_app):
    app = make_app([ORDER], [runsql("UPDATE orders SET qty = 0 WHERE id < 1000")])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [runsql("UPDATE orders SET qty = 0")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
