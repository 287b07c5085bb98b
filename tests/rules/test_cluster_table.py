"""cluster-table: CLUSTER rewrites the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from migration_guard.findings import Evidence, Severity

RULE = "cluster-table"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders', "
    "'indexes': [models.Index(fields=['qty'], name='orders_qty_idx')]})"
)


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_cluster_err(make_app):
    app = make_app([ORDER], [runsql("CLUSTER orders USING orders_qty_idx")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.ERROR
    assert finding.table == "orders"
    assert "orders" in finding.message and "orders_qty_idx" in finding.message
    assert finding.evidence is Evidence.OBSERVED
    assert ("orders", "AccessExclusiveLock") in [(x.relation, x.mode) for x in finding.locks]
    assert "orders" in finding.rewritten


def test_cluster_old_syntax_err(make_app):
    app = make_app([ORDER], [runsql("CLUSTER orders_qty_idx ON public.orders")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "orders"
    assert finding.evidence is Evidence.OBSERVED


def test_marking_the_cluster_index_only_ok(make_app):
    # ALTER TABLE ... CLUSTER ON only records the index: no rewrite.
    app = make_app([ORDER], [runsql("ALTER TABLE orders CLUSTER ON orders_qty_idx")])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [runsql("CLUSTER orders USING orders_qty_idx")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
