"""rename-model: RenameModel renames the table under the previous release."""

from __future__ import annotations

RULE = "rename-model"

INVITATION = (
    "migrations.CreateModel('Invitation', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('email', models.CharField(max_length=100))])"
)
TEAM = (
    "migrations.CreateModel('Team', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('invitations', models.ManyToManyField('invitation'))])"
)
RENAME = "migrations.RenameModel('Invitation', 'Invite')"


def test_rename_model_err(make_app):
    app = make_app([INVITATION], [RENAME])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    label = app.label
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == f"{label}_invitation"
    assert f"renames the table {label}_invitation to {label}_invite" in finding.message
    assert "previous release" in finding.message and "does not exist" in finding.message
    assert f"Meta.db_table = '{label}_invitation'" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command
    assert app.findings(report, "alter-db-table") == []
    assert app.findings(report, "alter-db-column") == []


def test_rename_model_lists_join_table_columns_err(make_app):
    app = make_app([INVITATION, TEAM], [RENAME])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    label = app.label
    assert finding.table == f"{label}_invitation"
    assert f"{label}_team_invitations.invitation_id to invite_id" in finding.message


def test_table_name_pinned_by_db_table_ok(make_app):
    app = make_app(
        [INVITATION],
        [
            "migrations.AlterModelTable('invitation', __name__.split('.')[0] + '_invitation')",
            RENAME,
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []
    assert app.findings(report, "alter-db-table") == []


def test_table_created_in_the_same_migration_ok(make_app):
    app = make_app(["migrations.RunSQL('SELECT 1', migrations.RunSQL.noop)"], [INVITATION, RENAME])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([INVITATION], [RENAME])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
