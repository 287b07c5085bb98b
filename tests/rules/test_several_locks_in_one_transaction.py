"""several-locks-in-one-transaction: slow work while another operation's lock is held."""

from __future__ import annotations

from migration_guard.findings import Severity

from ..harness import Migration

RULE = "several-locks-in-one-transaction"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
CUSTOMER = (
    "migrations.CreateModel('Customer', [('id', models.BigAutoField(primary_key=True)), "
    "('name', models.TextField(null=True))], options={'db_table': 'customers'})"
)
ADD_NOTE = "migrations.AddField('order', 'note', models.TextField(null=True))"
ADD_CUSTOMER_NOTE = "migrations.AddField('customer', 'note', models.TextField(null=True))"
INDEX_QTY = "migrations.AddIndex('order', models.Index(fields=['qty'], name='o_qty_idx'))"
INDEX_NAME = "migrations.AddIndex('customer', models.Index(fields=['name'], name='c_name_idx'))"


def test_add_field_then_index_on_the_same_table_err(make_app):
    app = make_app([ORDER], [ADD_NOTE, INDEX_QTY])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.WARNING
    assert finding.operation.index == 1
    assert finding.table == "orders"
    assert "reads and writes of orders" in finding.message
    assert "ACCESS EXCLUSIVE from operations[0] AddField" in finding.message
    assert [(lock.relation, lock.mode) for lock in finding.locks] == [
        ("orders", "AccessExclusiveLock")
    ]


def test_lock_on_another_table_held_during_an_index_build_err(make_app):
    app = make_app([ORDER, CUSTOMER], [ADD_CUSTOMER_NOTE, INDEX_QTY])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 1
    assert finding.table == "orders"
    assert "reads and writes of customers" in finding.message


def test_deferred_index_build_extends_a_later_lock_err(make_app):
    # AddField(db_index=True) builds its index at the end of the migration, after
    # operations[1] has locked customers.
    app = make_app(
        [ORDER, CUSTOMER],
        [
            "migrations.AddField('order', 'code', models.IntegerField(null=True, db_index=True))",
            ADD_CUSTOMER_NOTE,
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 0
    assert "customers" in finding.message


def test_runsql_variant_err(make_app):
    app = make_app(
        [ORDER, CUSTOMER],
        [
            "migrations.RunSQL('LOCK TABLE customers IN SHARE MODE', migrations.RunSQL.noop)",
            "migrations.RunSQL('ALTER TABLE orders ADD CONSTRAINT qty_positive CHECK (qty > 0)',"
            " migrations.RunSQL.noop)",
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 1
    assert "writes of customers" in finding.message


def test_brief_operations_together_ok(make_app):
    app = make_app([ORDER, CUSTOMER], [ADD_NOTE, ADD_CUSTOMER_NOTE])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_two_index_builds_on_one_table_ok(make_app):
    app = make_app(
        [ORDER],
        [INDEX_QTY, "migrations.AddIndex('order', models.Index(fields=['id', 'qty'], name='o2'))"],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_one_operation_per_migration_ok(make_app):
    app = make_app([ORDER], [ADD_NOTE], [INDEX_QTY])
    report = app.audit(2, 3)
    assert app.findings(report, RULE) == []


def test_non_atomic_migration_ok(make_app):
    app = make_app([ORDER, CUSTOMER], Migration([ADD_CUSTOMER_NOTE, INDEX_QTY], atomic=False))
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_tables_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER, CUSTOMER], [ADD_CUSTOMER_NOTE, INDEX_QTY, INDEX_NAME])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
