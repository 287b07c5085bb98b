"""rename-field: RenameField renames the column under the previous release."""

from __future__ import annotations

RULE = "rename-field"

TAG = (
    "migrations.CreateModel('Tag', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'accounts_tag'})"
)
PROFILE = (
    "migrations.CreateModel('Profile', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('bio', models.TextField(blank=True)), "
    "('phone', models.CharField(max_length=32, db_column='phone')), "
    "('tags', models.ManyToManyField('tag'))], "
    "options={'db_table': 'accounts_profile'})"
)
RENAME = "migrations.RenameField('profile', 'bio', 'about')"


def test_rename_field_err(make_app):
    app = make_app([TAG, PROFILE], [RENAME])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "accounts_profile"
    assert "renames the column accounts_profile.bio to about" in finding.message
    assert "previous release" in finding.message and "column does not exist" in finding.message
    assert "db_column='bio'" in finding.fix and "SeparateDatabaseAndState" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command
    assert app.findings(report, "alter-db-column") == []


def test_rename_many_to_many_renames_the_join_table_err(make_app):
    app = make_app([TAG, PROFILE], ["migrations.RenameField('profile', 'tags', 'labels')"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "accounts_profile_tags"
    assert "many-to-many table accounts_profile_tags to accounts_profile_labels" in (
        finding.message
    )
    assert "db_table='accounts_profile_tags'" in finding.fix


def test_column_kept_by_db_column_ok(make_app):
    # The sample's accounts 0007: the field has db_column, so the rename emits no SQL.
    app = make_app([TAG, PROFILE], ["migrations.RenameField('profile', 'phone', 'phone_number')"])
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_state_only_rename_ok(make_app):
    app = make_app(
        [TAG, PROFILE],
        [
            "migrations.SeparateDatabaseAndState(state_operations=["
            "migrations.AlterField('profile', 'bio', models.TextField(blank=True, "
            "db_column='bio')), " + RENAME + "], database_operations=[])"
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_runsql_rename_column_is_alter_db_column(make_app):
    sql = "ALTER TABLE accounts_profile RENAME COLUMN bio TO about"
    app = make_app([TAG, PROFILE], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    assert app.findings(report, RULE) == []
    assert len(app.findings(report, "alter-db-column")) == 1


def test_field_added_in_the_same_migration_ok(make_app):
    app = make_app(
        [TAG, PROFILE],
        [
            "migrations.AddField('profile', 'nick', models.TextField(null=True))",
            "migrations.RenameField('profile', 'nick', 'nickname')",
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([TAG, PROFILE], [RENAME])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
