"""The harness itself: a throwaway app is audited on the real server."""

from __future__ import annotations

from .harness import Migration

CREATE_ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField()), "
    "('note', models.CharField(max_length=20, null=True))])"
)


def test_audit_reports_the_postgres_it_ran_on(make_app, pg_server):
    app = make_app([CREATE_ORDER])
    report = app.audit()
    assert report.postgres is not None
    assert report.postgres.major == pg_server.server_version // 10000
    assert [m.name for m in report.migrations] == [app.names[0]]
    assert report.migrations[0].status == "audited"


def test_statements_are_attributed_to_their_operation(make_app):
    app = make_app(
        [CREATE_ORDER],
        [
            "migrations.AddField('order', 'qty', models.IntegerField(null=True))",
            "migrations.AddIndex('order', models.Index(fields=['created'], name='o_created_idx'))",
        ],
    )
    report = app.audit()
    result = report.migrations[0]
    assert result.status == "audited"
    assert result.operations == 2


def test_failing_runsql_is_a_finding_with_postgres_error(make_app):
    app = make_app(
        [CREATE_ORDER], ["migrations.RunSQL('ALTER TABLE nope ADD COLUMN x int', 'SELECT 1')"]
    )
    report = app.audit()
    failed = app.findings(report, "migration-failed")
    assert len(failed) == 1
    assert 'relation "nope" does not exist' in failed[0].message
    assert report.migrations[0].status == "failed"


def test_non_atomic_migration_is_audited(make_app):
    app = make_app(
        [CREATE_ORDER],
        Migration(
            [
                "AddIndexConcurrently('order', models.Index(fields=['created'], name='oc_idx'))",
            ],
            atomic=False,
            imports="from django.contrib.postgres.operations import AddIndexConcurrently",
        ),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited", report.migrations[0].error
