"""alter-db-table: a table rename (AlterModelTable, RunSQL) under the previous release."""

from __future__ import annotations

RULE = "alter-db-table"

TAG = (
    "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'accounts_tag'})"
)
PROFILE = (
    "migrations.CreateModel('Profile', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('tags', models.ManyToManyField('tag'))], "
    "options={'db_table': 'accounts_profile'})"
)
ALTER = "migrations.AlterModelTable('profile', 'accounts_user_profile')"


def runsql(*sql: str) -> str:
    return f"migrations.RunSQL({list(sql)!r}, migrations.RunSQL.noop)"


def test_alter_model_table_err(make_app):
    # The sample's accounts 0009.
    app = make_app([TAG, PROFILE], [ALTER])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "accounts_profile"
    assert "renames the table accounts_profile to accounts_user_profile" in finding.message
    assert "many-to-many tables accounts_profile_tags to accounts_user_profile_tags" in (
        finding.message
    )
    assert "previous release" in finding.message and "relation does not" in finding.message
    assert "SeparateDatabaseAndState" in finding.fix and "CREATE VIEW accounts_profile" in (
        finding.fix
    )
    assert finding.evidence.value == "predicted"
    assert finding.plan_command


def test_runsql_rename_table_err(make_app):
    app = make_app([TAG, PROFILE], [runsql("ALTER TABLE accounts_tag RENAME TO accounts_label")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "accounts_tag"
    assert "RunSQL renames the table accounts_tag to accounts_label" in finding.message


def test_rename_with_a_view_under_the_old_name_ok(make_app):
    app = make_app(
        [TAG, PROFILE],
        [
            "migrations.SeparateDatabaseAndState(state_operations=[" + ALTER + "], "
            "database_operations=["
            + runsql(
                "ALTER TABLE accounts_profile RENAME TO accounts_user_profile",
                "CREATE VIEW accounts_profile AS SELECT * FROM accounts_user_profile",
            )
            + "])"
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_same_table_name_ok(make_app):
    app = make_app([TAG, PROFILE], ["migrations.AlterModelTable('profile', 'accounts_profile')"])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_runsql_on_a_table_of_its_own_ok(make_app):
    app = make_app(
        [TAG, PROFILE],
        [
            runsql(
                "CREATE TABLE accounts_import_new (id bigint PRIMARY KEY)",
                "ALTER TABLE accounts_import_new RENAME TO accounts_import",
            )
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([TAG, PROFILE], [ALTER])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
