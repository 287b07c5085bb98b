"""not-null-without-db-default: the previous release's INSERTs fail on the new NOT NULL column."""

from __future__ import annotations

import django
import pytest

RULE = "not-null-without-db-default"

USER = (
    "migrations.CreateModel('User', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('name', models.CharField(max_length=20))], "
    "options={'db_table': 'accounts_user'})"
)
GROUP = (
    "migrations.CreateModel('Group', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'accounts_group'})"
)
ADD_LOGIN_COUNT = "migrations.AddField('user', 'login_count', models.IntegerField(default=0))"


def runsql(sql: str) -> str:
    return f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"


def test_add_field_with_python_default_err(make_app):
    # The sample's accounts 0002.
    app = make_app([USER], [ADD_LOGIN_COUNT])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.category.value == "compatibility"
    assert finding.table == "accounts_user"
    assert "adds accounts_user.login_count NOT NULL" in finding.message
    assert "one-off DEFAULT that the same migration drops" in finding.message
    assert "previous release" in finding.message and "not-null violation" in finding.message
    assert "db_default" in finding.fix and "SeparateDatabaseAndState" in finding.fix
    assert finding.evidence.value == "predicted"
    assert finding.plan_command


def test_add_not_null_foreign_key_err(make_app):
    app = make_app(
        [USER, GROUP],
        [
            "migrations.AddField('user', 'group', models.ForeignKey('group', default=1, "
            "on_delete=models.CASCADE))"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "accounts_user.group_id" in finding.message


def test_runsql_not_null_without_default_err(make_app):
    app = make_app([USER], [runsql("ALTER TABLE accounts_user ADD COLUMN score integer NOT NULL")])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "adds accounts_user.score NOT NULL with no DEFAULT" in finding.message


@pytest.mark.parametrize(
    "operation",
    [
        "migrations.AddField('user', 'login_count', models.IntegerField(null=True))",
        "migrations.AddField('user', 'login_count', models.IntegerField(null=True, default=0))",
        "migrations.AddField('user', 'groups', models.ManyToManyField('group'))",
        # The sample's accounts 0003: the DEFAULT stays in the database.
        "migrations.SeparateDatabaseAndState(state_operations=[" + ADD_LOGIN_COUNT + "], "
        "database_operations=["
        + runsql("ALTER TABLE accounts_user ADD COLUMN login_count integer DEFAULT 0 NOT NULL")
        + "])",
        # RunSQL whose DEFAULT (a constant, or a sequence) stays in place.
        runsql("ALTER TABLE accounts_user ADD COLUMN score integer NOT NULL DEFAULT 1"),
        runsql("ALTER TABLE accounts_user ADD COLUMN number bigserial NOT NULL"),
    ],
)
def test_database_default_kept_ok(make_app, operation):
    app = make_app([USER, GROUP], [operation])
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_default_set_again_later_in_the_migration_ok(make_app):
    app = make_app(
        [USER],
        [
            ADD_LOGIN_COUNT,
            runsql("ALTER TABLE accounts_user ALTER COLUMN login_count SET DEFAULT 0"),
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


@pytest.mark.skipif(django.VERSION < (5, 0), reason="db_default needs Django 5.0+")
def test_db_default_ok(make_app):
    app = make_app(
        [USER], ["migrations.AddField('user', 'login_count', models.IntegerField(db_default=0))"]
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_in_the_same_migration_ok(make_app):
    # The sample's blog 0002: the model and its NOT NULL foreign key arrive together.
    app = make_app([GROUP], [USER, ADD_LOGIN_COUNT])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_by_an_earlier_migration_of_the_change_ok(make_app):
    """The previous release never knew a table the same change created: nothing breaks."""
    app = make_app([USER], [ADD_LOGIN_COUNT])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
