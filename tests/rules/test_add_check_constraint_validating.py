"""add-check-constraint-validating: a CHECK without NOT VALID on an existing table."""

from __future__ import annotations

import django
import pytest

from tests.harness import Migration

RULE = "add-check-constraint-validating"

#: CheckConstraint's keyword: ``condition`` from Django 5.1, ``check`` before.
CONDITION = "condition" if django.VERSION >= (5, 1) else "check"

ITEM = (
    "migrations.CreateModel('Item', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True))], "
    "options={'db_table': 'shop_item'})"
)
CHECK = f"models.CheckConstraint({CONDITION}=models.Q(qty__gte=1), name='item_qty_positive')"
POSTGRES_OPS = (
    "from django.contrib.postgres.operations import AddConstraintNotValid, ValidateConstraint"
)


def test_add_check_constraint_err(make_app):
    app = make_app([ITEM], [f"migrations.AddConstraint('item', {CHECK})"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == "shop_item"
    assert '"item_qty_positive"' in finding.message and "shop_item" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message and "reads and writes" in finding.message
    assert "AddConstraintNotValid" in finding.fix and "ValidateConstraint" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"
    assert finding.scans
    assert finding.plan_command


def test_alter_field_to_positive_integer_err(make_app):
    """IntegerField -> PositiveIntegerField: Django adds the CHECK with ALTER TABLE."""
    app = make_app(
        [ITEM], ["migrations.AlterField('item', 'qty', models.PositiveIntegerField(null=True))"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "SeparateDatabaseAndState" in finding.fix and "NOT VALID" in finding.fix
    assert finding.evidence.value == "observed"
    assert app.findings(report, "add-column-check-scan") == []


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE shop_item ADD CONSTRAINT qty_pos CHECK (qty > 0)",
        "ALTER TABLE shop_item ADD CHECK (qty > 0)",
    ],
)
def test_runsql_check_err(make_app, sql):
    app = make_app([ITEM], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_item"
    assert "Append NOT VALID" in finding.fix
    assert finding.evidence.value == "observed"


def test_add_constraint_not_valid_then_validate_ok(make_app):
    app = make_app(
        [ITEM],
        Migration([f"AddConstraintNotValid('item', {CHECK})"], imports=POSTGRES_OPS),
        Migration(["ValidateConstraint('item', name='item_qty_positive')"], imports=POSTGRES_OPS),
    )
    report = app.audit(2, 3, together=False)
    assert [m.status for m in report.migrations] == ["audited", "audited"]
    assert app.findings(report, RULE) == []


def test_runsql_not_valid_ok(make_app):
    sql = "ALTER TABLE shop_item ADD CONSTRAINT qty_pos CHECK (qty > 0) NOT VALID"
    app = make_app([ITEM], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app([ITEM], [f"migrations.AddConstraint('item', {CHECK})"])
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
