"""observed-blocked-traffic: the previous release's queries waited past the threshold."""

from __future__ import annotations

RULE = "observed-blocked-traffic"

ITEM = (
    "migrations.CreateModel('Item', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('code', models.CharField(max_length=40)), "
    "('qty', models.IntegerField())], options={'db_table': 'ob_item'})"
)
REHEARSE = {
    "rehearse": True,
    "rehearse_rows": 300,
    "rehearse_rate": 50.0,
    "rehearse_threshold": "0.8s",
}


def sql(*statements: str) -> str:
    return f"migrations.RunSQL({list(statements)!r}, migrations.RunSQL.noop)"


SLEEP = "SELECT pg_sleep(1.5)"


def test_rows_kept_locked_by_a_data_step_err(make_app):
    app = make_app([ITEM], [sql("UPDATE ob_item SET qty = qty WHERE id > 0", SLEEP)])
    report = app.audit(**REHEARSE)
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error" and finding.category.value == "locking"
    assert finding.evidence.value == "observed" and finding.table == "ob_item"
    (traffic,) = finding.traffic
    assert {k.kind: k for k in traffic.kinds}["update"].longest_wait_ms >= 800
    assert traffic.longest(reads=True) < 800  # row locks: the reads go on
    assert not traffic.lock_queue
    assert "While operations[0] RunSQL ran, the previous release's writes waited" in (
        finding.message
    )
    assert "No rule predicted it" in finding.message and "CONCURRENTLY" in finding.fix
    assert app.rules(report) == [RULE]


def test_a_slow_step_that_locks_no_row_ok(make_app):
    app = make_app([ITEM], [sql("UPDATE ob_item SET qty = qty WHERE id < 0", SLEEP)])
    report = app.audit(**REHEARSE)
    assert app.rules(report) == []
    (migration,) = report.migrations
    assert migration.rehearsal is not None
    assert migration.rehearsal.tables[0].over_threshold == 0


def test_a_locking_rule_that_predicted_it_carries_the_measurement(make_app):
    app = make_app([ITEM], [sql("CREATE INDEX ob_item_code ON ob_item (code)", SLEEP)])
    report = app.audit(**REHEARSE)
    assert RULE not in app.rules(report)
    (finding,) = app.findings(report, "add-index-non-concurrent")
    (traffic,) = finding.traffic
    assert traffic.over_threshold >= 1 and traffic.longest(reads=False) >= 800


def test_a_table_created_earlier_in_the_change_ok(make_app):
    app = make_app(
        ["migrations.CreateModel('Other', [('id', models.BigAutoField(primary_key=True))])"],
        [ITEM],
        [sql("UPDATE ob_item SET qty = qty WHERE id > 0", SLEEP)],
    )
    report = app.audit(2, 3, **REHEARSE)
    assert RULE not in app.rules(report)
