"""reindex-non-concurrent: REINDEX without CONCURRENTLY on an existing table or its index."""

from __future__ import annotations

from tests.harness import Migration

RULE = "reindex-non-concurrent"

ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField(null=True))], "
    "options={'db_table': 'shop_order'})"
)
INDEX = "migrations.AddIndex('order', models.Index(fields=['created'], name='o_created_idx'))"


def test_reindex_index_err(make_app):
    app = make_app(
        [ORDER, INDEX], ["migrations.RunSQL('REINDEX INDEX o_created_idx', migrations.RunSQL.noop)"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == "shop_order"  # from the locks the trace saw
    assert '"o_created_idx" on shop_order' in finding.message
    assert "SHARE on shop_order" in finding.message and "ACCESS EXCLUSIVE" in finding.message
    assert "REINDEX INDEX CONCURRENTLY" in finding.fix and "atomic = False" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "ShareLock"
    assert finding.plan_command is None


def test_reindex_table_err(make_app):
    app = make_app(
        [ORDER, INDEX], ["migrations.RunSQL('REINDEX TABLE shop_order', migrations.RunSQL.noop)"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_order"
    assert finding.message.startswith("REINDEX TABLE shop_order rebuilds every index")
    assert finding.evidence.value == "observed"


def test_before_postgres_12_the_fix_builds_a_copy_err(make_app):
    app = make_app(
        [ORDER, INDEX], ["migrations.RunSQL('REINDEX INDEX o_created_idx', migrations.RunSQL.noop)"]
    )
    report = app.audit(postgres_version=11)
    (finding,) = app.findings(report, RULE)
    assert "no REINDEX CONCURRENTLY" in finding.fix


def test_reindex_concurrently_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        Migration(["migrations.RunSQL('REINDEX INDEX CONCURRENTLY o_created_idx')"], atomic=False),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        [
            "migrations.RunSQL('REINDEX INDEX o_created_idx', migrations.RunSQL.noop)",
            "migrations.RunSQL('REINDEX TABLE shop_order', migrations.RunSQL.noop)",
        ],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
