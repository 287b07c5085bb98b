"""add-column-not-null-without-default: fails on any table with rows."""

from __future__ import annotations

RULE = "add-column-not-null-without-default"
ENTRY = (
    "migrations.CreateModel('Entry', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'search_entry'})"
)
FILL = "migrations.RunSQL('INSERT INTO search_entry DEFAULT VALUES', migrations.RunSQL.noop)"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_not_null_column_without_default_err(make_app):
    app = make_app([ENTRY], [runsql("ALTER TABLE search_entry ADD COLUMN doc tsvector NOT NULL")])
    (finding,) = app.findings(app.audit(), RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "correctness"
    assert finding.table == "search_entry"
    assert "contains null values" in finding.message


def test_what_the_rule_predicts_happens_when_the_table_has_rows(make_app):
    """With one row in the table, PostgreSQL refuses the same statement."""
    app = make_app(
        [ENTRY, FILL], [runsql("ALTER TABLE search_entry ADD COLUMN doc tsvector NOT NULL")]
    )
    report = app.audit()
    (failed,) = app.findings(report, "migration-failed")
    assert "contains null values" in failed.message


def test_with_a_default_or_nullable_or_identity_ok(make_app):
    for sql in (
        "ALTER TABLE search_entry ADD COLUMN n integer DEFAULT 0 NOT NULL",
        "ALTER TABLE search_entry ADD COLUMN n integer NULL",
        "ALTER TABLE search_entry ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY",
        "ALTER TABLE search_entry ADD COLUMN n bigserial NOT NULL",
    ):
        app = make_app([ENTRY], [runsql(sql)])
        assert app.findings(app.audit(), RULE) == [], sql


def test_django_not_null_field_is_not_this_rule(make_app):
    """Django adds a one-off DEFAULT: that is not-null-without-db-default's business."""
    app = make_app([ENTRY], ["migrations.AddField('entry', 'n', models.IntegerField(default=0))"])
    assert app.findings(app.audit(), RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ENTRY], [runsql("ALTER TABLE search_entry ADD COLUMN doc tsvector NOT NULL")])
    assert app.findings(app.audit(1, 2), RULE) == []
