"""remove-model: dropping a table the previous release still queries."""

from __future__ import annotations

RULE = "remove-model"

TAG = (
    "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'blog_tag'})"
)
PAGEVIEW = (
    "migrations.CreateModel('PageView', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('tags', models.ManyToManyField('tag'))], "
    "options={'db_table': 'blog_pageview'})"
)
DELETE = "migrations.DeleteModel('PageView')"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_delete_model_err(make_app):
    app = make_app([TAG, PAGEVIEW], [DELETE])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "blog_pageview"
    assert "DeleteModel drops the table blog_pageview" in finding.message
    assert "many-to-many tables blog_pageview_tags" in finding.message
    assert "previous release" in finding.message and "relation does not exist" in finding.message
    assert "SeparateDatabaseAndState" in finding.fix and "DeleteModel" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command
    assert app.findings(report, "remove-field") == []


def test_runsql_drop_table_err(make_app):
    app = make_app([TAG, PAGEVIEW], [runsql("DROP TABLE blog_tag CASCADE")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "blog_tag"
    assert "RunSQL drops the table blog_tag" in finding.message


def test_state_only_deletion_ok(make_app):
    app = make_app(
        [TAG, PAGEVIEW],
        [
            "migrations.SeparateDatabaseAndState(state_operations=[" + DELETE + "], "
            "database_operations=[])"
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_runsql_on_a_table_of_its_own_ok(make_app):
    app = make_app(
        [TAG],
        [
            runsql("CREATE TABLE blog_import (id bigint PRIMARY KEY)"),
            runsql("DROP TABLE blog_import"),
            runsql("DROP TABLE IF EXISTS blog_never_existed"),
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_in_the_same_migration_ok(make_app):
    app = make_app([TAG], [PAGEVIEW, DELETE])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([TAG, PAGEVIEW], [DELETE])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
