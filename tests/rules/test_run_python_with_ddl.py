"""run-python-with-ddl: a data migration that runs while DDL locks are held."""

from __future__ import annotations

from migration_guard.findings import Severity

from ..harness import Migration

RULE = "run-python-with-ddl"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
BACKFILL = """
def backfill(apps, schema_editor):
    Order = apps.get_model(__name__.split('.')[0], 'Order')
    Order.objects.update(total=0)
"""
ADD_TOTAL = "migrations.AddField('order', 'total', models.IntegerField(null=True))"
RUN_BACKFILL = "migrations.RunPython(backfill, migrations.RunPython.noop)"
ADD_INDEX = "migrations.AddIndex('order', models.Index(fields=['qty'], name='o_qty_idx'))"


def runsql(*statements: str) -> str:
    return f"migrations.RunSQL({list(statements)!r}, migrations.RunSQL.noop)"


def test_run_python_after_add_field_err(make_app):
    app = make_app([ORDER], Migration([ADD_TOTAL, RUN_BACKFILL], extra=BACKFILL))
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.ERROR
    assert finding.operation.index == 1
    assert finding.table == "orders"
    assert "ACCESS EXCLUSIVE on orders" in finding.message
    assert "operations[0] AddField" in finding.message
    assert [(lock.relation, lock.mode) for lock in finding.locks] == [
        ("orders", "AccessExclusiveLock")
    ]


def test_runsql_update_after_create_index_err(make_app):
    app = make_app([ORDER], [ADD_INDEX, runsql("UPDATE orders SET qty = 0 WHERE qty IS NULL")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 1
    assert "RunSQL UPDATE" in finding.message
    assert "SHARE on orders" in finding.message


def test_runsql_insert_select_after_alter_err(make_app):
    app = make_app(
        [ORDER],
        [
            runsql("ALTER TABLE orders ADD COLUMN total int"),
            runsql("INSERT INTO orders (qty) SELECT qty FROM orders"),
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 1
    assert "RunSQL INSERT" in finding.message


def test_ddl_and_update_in_the_same_runsql_err(make_app):
    app = make_app(
        [ORDER],
        [runsql("ALTER TABLE orders ADD COLUMN total int", "UPDATE orders SET total = 0")],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "orders"
    assert "ALTER TABLE ADD COLUMN" in finding.message


def test_non_atomic_migration_ok(make_app):
    app = make_app([ORDER], Migration([ADD_TOTAL, RUN_BACKFILL], extra=BACKFILL, atomic=False))
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_schema_change_and_backfill_in_separate_migrations_ok(make_app):
    app = make_app([ORDER], [ADD_TOTAL], Migration([RUN_BACKFILL], extra=BACKFILL))
    report = app.audit(2, 3)
    assert app.findings(report, RULE) == []


def test_ddl_after_the_data_migration_ok(make_app):
    app = make_app([ORDER, ADD_TOTAL], Migration([RUN_BACKFILL, ADD_INDEX], extra=BACKFILL))
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_single_row_insert_is_not_a_data_migration_ok(make_app):
    app = make_app([ORDER], [ADD_TOTAL, runsql("INSERT INTO orders (qty) VALUES (1)")])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_lock_table_is_left_to_lock_table_ok(make_app):
    app = make_app(
        [ORDER],
        [runsql("LOCK TABLE orders IN SHARE MODE", "UPDATE orders SET qty = 1 WHERE qty = 0")],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []
    assert len(app.findings(report, "lock-table")) == 1


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], Migration([ADD_TOTAL, RUN_BACKFILL], extra=BACKFILL))
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
