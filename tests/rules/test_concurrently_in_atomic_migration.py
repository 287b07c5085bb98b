"""concurrently-in-atomic-migration: PostgreSQL and Django refuse it; the migration fails."""

from __future__ import annotations

import pytest

from tests.harness import Migration

RULE = "concurrently-in-atomic-migration"

ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField(null=True))], "
    "options={'db_table': 'shop_order'})"
)
INDEX = "migrations.AddIndex('order', models.Index(fields=['created'], name='o_created_idx'))"
POSTGRES_OPS = (
    "from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently"
)


def test_runsql_concurrently_in_atomic_migration_err(make_app):
    """The first statement fails the migration; the rule reads the others from their source."""
    app = make_app(
        [ORDER, INDEX],
        [
            "migrations.RunSQL('CREATE INDEX CONCURRENTLY o_c2_idx ON shop_order (created)')",
            "migrations.RunSQL('DROP INDEX CONCURRENTLY o_created_idx')",
            "migrations.RunSQL('REINDEX INDEX CONCURRENTLY o_created_idx')",
        ],
    )
    report = app.audit()
    findings = app.findings(report, RULE)
    assert [f.operation.index for f in findings] == [0, 1, 2]
    expected = ["CREATE INDEX CONCURRENTLY", "DROP INDEX CONCURRENTLY", "REINDEX ... CONCURRENTLY"]
    for statement, finding in zip(expected, findings, strict=True):
        assert finding.severity.value == "error"
        assert finding.category.value == "correctness"
        assert statement in finding.message and "atomic" in finding.message
        assert "cannot run inside a transaction block" in finding.message
        assert "atomic = False" in finding.fix
    # The audit applied it for real: the failure is reported too.
    assert report.migrations[0].status == "failed"
    assert app.findings(report, "migration-failed")


def test_every_statement_of_runsql_is_read_even_after_the_failure_err(make_app):
    app = make_app(
        [ORDER, INDEX],
        [
            "migrations.RunSQL(['CREATE INDEX CONCURRENTLY o_c2_idx ON shop_order (created)', "
            "'DROP INDEX CONCURRENTLY o_created_idx'])"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY" in finding.message
    assert finding.table == "shop_order"
    assert len(finding.sql) == 2


@pytest.mark.parametrize(
    ("operation", "verb"),
    [
        ("AddIndexConcurrently('order', models.Index(fields=['id'], name='o_id_idx'))", "CREATE"),
        ("RemoveIndexConcurrently('order', 'o_created_idx')", "DROP"),
    ],
)
def test_concurrent_operation_in_atomic_migration_err(make_app, operation, verb):
    app = make_app([ORDER, INDEX], Migration([operation], imports=POSTGRES_OPS))
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert f"{verb} INDEX CONCURRENTLY" in finding.message
    assert "NotSupportedError" in finding.message
    assert finding.table == "shop_order"


def test_separate_database_and_state_runsql_err(make_app):
    app = make_app(
        [ORDER],
        [
            "migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("
            "'CREATE INDEX CONCURRENTLY o_c2_idx ON shop_order (created)')])"
        ],
    )
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_table_created_earlier_in_the_same_change_is_still_flagged_err(make_app):
    """Not about locks: the migration fails whatever the table."""
    app = make_app(
        [ORDER],
        ["migrations.RunSQL('CREATE INDEX CONCURRENTLY o_c2_idx ON shop_order (created)')"],
    )
    report = app.audit(1, 2)
    assert len(app.findings(report, RULE)) == 1


def test_non_atomic_migration_ok(make_app):
    app = make_app(
        [ORDER, INDEX],
        Migration(
            [
                "AddIndexConcurrently('order', models.Index(fields=['id'], name='o_id_idx'))",
                "migrations.RunSQL('DROP INDEX CONCURRENTLY o_created_idx')",
            ],
            atomic=False,
            imports=POSTGRES_OPS,
        ),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_non_concurrent_index_in_atomic_migration_ok(make_app):
    app = make_app([ORDER], ["migrations.RunSQL('CREATE INDEX o_c2_idx ON shop_order (created)')"])
    report = app.audit()
    assert app.findings(report, RULE) == []
