"""remove-field: dropping a column the previous release still reads and writes."""

from __future__ import annotations

RULE = "remove-field"

TAG = (
    "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'blog_tag'})"
)
POST = (
    "migrations.CreateModel('Post', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('legacy_html', models.TextField()), "
    "('author', models.ForeignKey('tag', null=True, on_delete=models.CASCADE)), "
    "('tags', models.ManyToManyField('tag', related_name='posts'))], "
    "options={'db_table': 'blog_post'})"
)
REMOVE = "migrations.RemoveField('post', 'legacy_html')"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_remove_field_err(make_app):
    app = make_app([TAG, POST], [REMOVE])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "blog_post"
    assert "RemoveField drops blog_post.legacy_html" in finding.message
    assert "previous release" in finding.message and "column does not exist" in finding.message
    assert "SeparateDatabaseAndState" in finding.fix and "later release" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command


def test_remove_foreign_key_err(make_app):
    # The sample's shop 0022: Django drops the FK constraint, then the column.
    app = make_app([TAG, POST], ["migrations.RemoveField('post', 'author')"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "blog_post.author_id" in finding.message


def test_remove_many_to_many_drops_the_join_table_err(make_app):
    app = make_app([TAG, POST], ["migrations.RemoveField('post', 'tags')"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "blog_post_tags"
    assert "many-to-many table blog_post_tags" in finding.message
    assert app.findings(report, "remove-model") == []


def test_runsql_drop_column_err(make_app):
    app = make_app([TAG, POST], [runsql("ALTER TABLE blog_post DROP COLUMN legacy_html")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "RunSQL drops blog_post.legacy_html" in finding.message


def test_state_only_removal_ok(make_app):
    # The sample's blog 0015/0016: nullable first, then out of Django's state only.
    app = make_app(
        [TAG, POST],
        [
            "migrations.AlterField('post', 'legacy_html', models.TextField(null=True))",
            "migrations.SeparateDatabaseAndState(state_operations=[" + REMOVE + "], "
            "database_operations=[])",
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_runsql_on_a_table_of_its_own_ok(make_app):
    app = make_app(
        [TAG, POST],
        [
            runsql("CREATE TABLE blog_import (id bigint PRIMARY KEY, raw text)"),
            runsql("ALTER TABLE blog_import DROP COLUMN raw"),
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_field_added_in_the_same_migration_ok(make_app):
    app = make_app(
        [TAG, POST],
        [
            "migrations.AddField('post', 'draft', models.TextField(null=True))",
            "migrations.RemoveField('post', 'draft')",
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([TAG, POST], [REMOVE])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


def test_contract_step_drop_of_a_column_already_out_of_state_ok(make_app):
    """Release 2 of expand/contract: the column left Django's state in release 1."""
    app = make_app(
        [TAG, POST],
        [
            "migrations.SeparateDatabaseAndState(state_operations=["
            "migrations.AlterField('post', 'legacy_html', models.TextField(null=True)), "
            "migrations.RemoveField('post', 'legacy_html')], database_operations=["
            "migrations.RunSQL('ALTER TABLE blog_post ALTER COLUMN legacy_html DROP NOT NULL', "
            "migrations.RunSQL.noop)])"
        ],
        [runsql("ALTER TABLE blog_post DROP COLUMN legacy_html")],
    )
    assert app.findings(app.audit(), RULE) == []


def test_runsql_drop_of_a_column_still_in_state_err(make_app):
    app = make_app([TAG, POST], [runsql("ALTER TABLE blog_post DROP COLUMN legacy_html")])
    (finding,) = app.findings(app.audit(), RULE)
    assert finding.table == "blog_post"
