"""lock-table: an explicit LOCK TABLE that blocks reads or writes until commit."""

from __future__ import annotations

import pytest

from migration_guard.findings import Evidence, Severity

RULE = "lock-table"

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


@pytest.mark.parametrize(
    ("sql", "mode", "blocked"),
    [
        ("LOCK TABLE orders", "AccessExclusiveLock", "reads and writes"),
        ("LOCK orders IN EXCLUSIVE MODE", "ExclusiveLock", "writes"),
        ("LOCK TABLE ONLY public.orders IN SHARE MODE", "ShareLock", "writes"),
    ],
)
def test_lock_table_err(make_app, sql, mode, blocked):
    app = make_app([ORDER], [runsql(sql)])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.ERROR
    assert finding.table == "orders"
    assert f"blocks {blocked} of orders" in finding.message
    assert finding.evidence is Evidence.OBSERVED
    assert finding.locks[0].relation == "orders"
    assert finding.locks[0].mode == mode


def test_lock_two_tables_err(make_app):
    app = make_app([ORDER, LINE], [runsql("LOCK TABLE orders, lines IN SHARE ROW EXCLUSIVE MODE")])
    report = app.audit()
    findings = app.findings(report, RULE)
    assert sorted(f.table for f in findings) == ["lines", "orders"]
    for finding in findings:
        assert finding.evidence is Evidence.OBSERVED
        assert finding.locks[0].mode == "ShareRowExclusiveLock"


def test_modes_that_block_no_one_ok(make_app):
    modes = ["ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"]
    app = make_app([ORDER], [runsql(f"LOCK TABLE orders IN {mode} MODE") for mode in modes])
    report = app.audit()
    assert report.migrations[0].operations == len(modes)
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ORDER], [runsql("LOCK TABLE orders")])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
