"""lock-timeout-missing: a blocking lock is requested with no lock_timeout set.

``App.rules()`` leaves this advice out on purpose: these tests look at its findings directly.
"""

from __future__ import annotations

from migration_guard.findings import Severity

from ..harness import Migration

RULE = "lock-timeout-missing"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], options={'db_table': 'orders'})"
)
CUSTOMER = (
    "migrations.CreateModel('Customer', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'customers'})"
)
ADD_NOTE = "migrations.AddField('order', 'note', models.TextField(null=True))"
ADD_CUSTOMER_NOTE = "migrations.AddField('customer', 'note', models.TextField(null=True))"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_brief_lock_without_lock_timeout_err(make_app):
    app = make_app([ORDER], [ADD_NOTE])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.WARNING
    assert finding.table == "orders"
    assert "ACCESS EXCLUSIVE on orders" in finding.message
    assert "queues behind" in finding.message
    # It is the only finding: the trace adds no brief-lock advice of its own.
    assert [f.rule for f in report.findings] == [RULE]


def test_one_finding_per_migration_at_the_first_lock_err(make_app):
    app = make_app([ORDER, CUSTOMER], [runsql("SELECT 1"), ADD_CUSTOMER_NOTE, ADD_NOTE])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.operation.index == 1
    assert finding.table == "customers"
    assert "orders" in finding.message


def test_index_build_and_runsql_lock_err(make_app):
    app = make_app(
        [ORDER],
        [
            "migrations.AddIndex('order', models.Index(fields=['qty'], name='o_qty_idx'))",
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "SHARE on orders" in finding.message

    app = make_app([ORDER], [runsql("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")])
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_set_after_the_lock_is_too_late_err(make_app):
    app = make_app([ORDER], [ADD_NOTE, runsql("SET lock_timeout = '5s'")])
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_configured_lock_timeout_ok(make_app):
    app = make_app([ORDER], [ADD_NOTE])
    report = app.audit(lock_timeout="5s")
    assert app.findings(report, RULE) == []


def test_migration_sets_its_own_lock_timeout_ok(make_app):
    app = make_app([ORDER], [runsql("SET LOCAL lock_timeout = '3s'"), ADD_NOTE])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_set_local_does_not_last_in_a_non_atomic_migration_err(make_app):
    app = make_app(
        [ORDER], Migration([runsql("SET LOCAL lock_timeout = '3s'"), ADD_NOTE], atomic=False)
    )
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_concurrent_index_blocks_no_one_ok(make_app):
    app = make_app(
        [ORDER],
        Migration(
            ["AddIndexConcurrently('order', models.Index(fields=['qty'], name='o_qty_idx'))"],
            atomic=False,
            imports="from django.contrib.postgres.operations import AddIndexConcurrently",
        ),
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [ADD_NOTE])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
