"""add-column-check-scan: ADD COLUMN with an inline CHECK scans an existing table under lock."""

from __future__ import annotations

import pytest

RULE = "add-column-check-scan"

PRODUCT = (
    "migrations.CreateModel('Product', ["
    "('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'shop_product'})"
)


@pytest.mark.parametrize(
    "field", ["PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField"]
)
def test_add_positive_integer_field_err(make_app, field):
    app = make_app(
        [PRODUCT], [f"migrations.AddField('product', 'stock', models.{field}(null=True))"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == "shop_product"
    assert "ADD COLUMN stock on shop_product" in finding.message
    assert f"the {field}'s database check" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message and "every existing row" in finding.message
    assert "SeparateDatabaseAndState" in finding.fix and "NOT VALID" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"
    assert finding.scans
    assert finding.plan_command
    # The inline CHECK is this rule's; the ALTER TABLE ... ADD CONSTRAINT rule stays quiet.
    assert app.findings(report, "add-check-constraint-validating") == []


def test_runsql_add_column_with_check_err(make_app):
    sql = "ALTER TABLE shop_product ADD COLUMN weight integer CHECK (weight > 0)"
    app = make_app([PRODUCT], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "ADD COLUMN weight on shop_product" in finding.message
    assert "Add the column without the CHECK" in finding.fix
    assert finding.evidence.value == "observed"


def test_add_integer_field_ok(make_app):
    app = make_app(
        [PRODUCT], ["migrations.AddField('product', 'stock', models.IntegerField(null=True))"]
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_column_then_check_not_valid_ok(make_app):
    sql = (
        "ALTER TABLE shop_product ADD COLUMN stock integer NULL; "
        "ALTER TABLE shop_product ADD CONSTRAINT shop_product_stock_check "
        "CHECK (stock >= 0) NOT VALID"
    )
    app = make_app(
        [PRODUCT],
        [
            "migrations.SeparateDatabaseAndState(state_operations=["
            "migrations.AddField('product', 'stock', models.PositiveIntegerField(null=True))], "
            f"database_operations=[migrations.RunSQL({sql!r}, migrations.RunSQL.noop)])"
        ],
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []
    assert app.findings(report, "add-check-constraint-validating") == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [PRODUCT],
        ["migrations.AddField('product', 'stock', models.PositiveIntegerField(null=True))"],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
