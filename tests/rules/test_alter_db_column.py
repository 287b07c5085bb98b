"""alter-db-column: a column rename (new db_column, RunSQL) under the previous release."""

from __future__ import annotations

RULE = "alter-db-column"

COMMENT = (
    "migrations.CreateModel('Comment', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('body', models.TextField()), "
    "('agent', models.CharField(max_length=20, db_column='user_agent'))], "
    "options={'db_table': 'blog_comment'})"
)
ALTER = "migrations.AlterField('comment', 'body', models.TextField(db_column='content'))"


def runsql(*sql: str) -> str:
    return f"migrations.RunSQL({list(sql)!r}, migrations.RunSQL.noop)"


def test_alter_field_db_column_err(make_app):
    # The sample's blog 0017.
    app = make_app([COMMENT], [ALTER])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "blog_comment"
    assert "renames the column blog_comment.body to content" in finding.message
    assert "previous release" in finding.message and "column does not exist" in finding.message
    assert "db_column='body'" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command
    assert app.findings(report, "rename-field") == []


def test_runsql_rename_column_err(make_app):
    app = make_app([COMMENT], [runsql("ALTER TABLE blog_comment RENAME COLUMN body TO content")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "RunSQL renames the column blog_comment.body to content" in finding.message


def test_db_column_naming_the_existing_column_ok(make_app):
    app = make_app(
        [COMMENT],
        ["migrations.AlterField('comment', 'body', models.TextField(db_column='body'))"],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_rename_field_is_not_this_rule(make_app):
    app = make_app([COMMENT], ["migrations.RenameField('comment', 'body', 'text')"])
    report = app.audit()
    assert app.findings(report, RULE) == []
    assert len(app.findings(report, "rename-field")) == 1


def test_runsql_on_a_table_of_its_own_ok(make_app):
    app = make_app(
        [COMMENT],
        [
            runsql(
                "CREATE TABLE blog_import (id bigint PRIMARY KEY, raw text)",
                "ALTER TABLE blog_import RENAME COLUMN raw TO body",
            )
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([COMMENT], [ALTER])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []


def test_column_swap_in_one_transaction_ok(make_app):
    """Expand/contract switch: the old name exists before and after the migration."""
    app = make_app(
        [
            "migrations.CreateModel('Item', [('id', models.BigAutoField(primary_key=True)), "
            "('stock', models.IntegerField(default=0))], options={'db_table': 'shop_item'})"
        ],
        [
            "migrations.RunSQL('ALTER TABLE shop_item ADD COLUMN stock__new bigint', "
            "'ALTER TABLE shop_item DROP COLUMN stock__new')"
        ],
        [
            "migrations.RunSQL('ALTER TABLE shop_item RENAME COLUMN stock TO stock__old; "
            "ALTER TABLE shop_item RENAME COLUMN stock__new TO stock', "
            "'ALTER TABLE shop_item RENAME COLUMN stock TO stock__new; "
            "ALTER TABLE shop_item RENAME COLUMN stock__old TO stock')"
        ],
    )
    assert app.findings(app.audit(), "alter-db-column") == []
