"""drop-index-non-concurrent: DROP INDEX without CONCURRENTLY on an index of an existing table."""

from __future__ import annotations

from tests.harness import Migration

RULE = "drop-index-non-concurrent"
#: This family of rules: each hazard is reported by exactly the expected ones.
FAMILY = {
    "add-index-non-concurrent",
    "drop-index-non-concurrent",
    "add-unique-constraint",
    "add-foreign-key-validating",
    "add-check-constraint-validating",
    "add-column-check-scan",
    "concurrently-in-atomic-migration",
    "reindex-non-concurrent",
}


def _family(app, report):
    return [rule for rule in app.rules(report) if rule in FAMILY]


ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField(null=True)), "
    "('sku', models.CharField(max_length=20, null=True, db_index=True))], "
    "options={'db_table': 'shop_order'})"
)
INDEX = "migrations.AddIndex('order', models.Index(fields=['created'], name='o_created_idx'))"
CONCURRENT = "from django.contrib.postgres.operations import RemoveIndexConcurrently"


def test_remove_index_err(make_app):
    app = make_app([ORDER, INDEX], ["migrations.RemoveIndex('order', 'o_created_idx')"])
    report = app.audit()
    assert _family(app, report) == [RULE]
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "warning"
    assert finding.table == "shop_order"
    assert '"o_created_idx"' in finding.message and "shop_order" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message and "reads and writes" in finding.message
    assert "RemoveIndexConcurrently" in finding.fix
    assert finding.evidence.value == "observed"
    assert [(lock.relation, lock.mode) for lock in finding.locks] == [
        ("shop_order", "AccessExclusiveLock")
    ]
    assert finding.plan_command


def test_db_index_removed_drops_both_indexes_err(make_app):
    app = make_app(
        [ORDER],
        ["migrations.AlterField('order', 'sku', models.CharField(max_length=20, null=True))"],
    )
    report = app.audit()
    findings = app.findings(report, RULE)
    assert len(findings) == 2
    assert sum("_like" in f.message for f in findings) == 1
    assert all(f.table == "shop_order" and f.evidence.value == "observed" for f in findings)
    assert all("SeparateDatabaseAndState" in f.fix for f in findings)


def test_runsql_drop_index_finds_the_table_from_the_trace_err(make_app):
    app = make_app(
        [ORDER, INDEX],
        ["migrations.RunSQL('DROP INDEX o_created_idx', migrations.RunSQL.noop)"],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_order"
    assert "DROP INDEX CONCURRENTLY" in finding.fix and "atomic = False" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"


def test_runsql_drop_index_without_trace_names_the_index_err(make_app):
    app = make_app(
        [ORDER, INDEX],
        ["migrations.RunSQL('DROP INDEX o_created_idx', migrations.RunSQL.noop)"],
    )
    report = app.audit(trace=False)
    (finding,) = app.findings(report, RULE)
    assert finding.table is None
    assert '"o_created_idx"' in finding.message and "its table" in finding.message


def test_remove_index_concurrently_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        Migration(
            ["RemoveIndexConcurrently('order', 'o_created_idx')"],
            atomic=False,
            imports=CONCURRENT,
        ),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_runsql_drop_index_if_exists_of_a_missing_index_ok(make_app):
    app = make_app([ORDER], ["migrations.RunSQL('DROP INDEX IF EXISTS nope_idx')"])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        [
            "migrations.RemoveIndex('order', 'o_created_idx')",
            "migrations.AlterField('order', 'sku', models.CharField(max_length=20, null=True))",
        ],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


def test_runsql_index_of_a_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        ["migrations.RunSQL('DROP INDEX o_created_idx', migrations.RunSQL.noop)"],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


def test_index_of_a_model_deleted_by_the_same_migration_ok(make_app):
    """makemigrations on Django 6.0+ removes Meta.indexes before DeleteModel: the table's
    drop is the finding (remove-model), not its index's."""
    app = make_app(
        [ORDER, INDEX],
        ["migrations.RemoveIndex('order', 'o_created_idx')", "migrations.DeleteModel('Order')"],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []
    assert [f.rule for f in report.findings if f.rule == "remove-model"] == ["remove-model"]
