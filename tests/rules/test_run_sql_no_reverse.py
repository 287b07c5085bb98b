"""run-sql-no-reverse: RunSQL without reverse_sql is irreversible."""

from __future__ import annotations

from migration_guard.findings import Category, Severity

RULE = "run-sql-no-reverse"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
UPDATE = "UPDATE orders SET qty = 1 WHERE qty IS NULL"


def test_run_sql_without_reverse_err(make_app):
    app = make_app([ORDER], [f"migrations.RunSQL({UPDATE!r})"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.WARNING
    assert finding.category is Category.REVERSIBILITY
    assert finding.table == "orders"
    assert f"migrate {app.label} {app.names[0]}" in finding.message
    assert "IrreversibleError" in finding.message
    assert finding.sql == (UPDATE,)


def test_inside_separate_database_and_state_err(make_app):
    app = make_app(
        [ORDER],
        [
            "migrations.SeparateDatabaseAndState(database_operations=["
            "migrations.RunSQL('ALTER TABLE orders ADD COLUMN note text')], state_operations=["
            "migrations.AddField('order', 'note', models.TextField(null=True))])"
        ],
    )
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_reverse_sql_ok(make_app):
    app = make_app(
        [ORDER],
        [
            "migrations.RunSQL('CREATE INDEX orders_qty ON orders (qty)', "
            "reverse_sql='DROP INDEX orders_qty')"
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_noop_reverse_ok(make_app):
    app = make_app([ORDER], [f"migrations.RunSQL({UPDATE!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_tables_created_in_the_change_still_count_err(make_app):
    app = make_app([ORDER], [f"migrations.RunSQL({UPDATE!r})"])
    report = app.audit(1, 2)
    assert len(app.findings(report, RULE)) == 1
