"""add-foreign-key-validating: a FOREIGN KEY without NOT VALID on an existing table."""

from __future__ import annotations

import pytest

RULE = "add-foreign-key-validating"

CUSTOMER = (
    "migrations.CreateModel('Customer', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'shop_customer'})"
)
ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('customer', models.ForeignKey('customer', null=True, db_constraint=False, "
    "on_delete=models.DO_NOTHING)), "
    "('ref', models.BigIntegerField(null=True))], "
    "options={'db_table': 'shop_order'})"
)
ADD_FK = (
    "ALTER TABLE shop_order ADD CONSTRAINT shop_order_ref_fk "
    "FOREIGN KEY (ref) REFERENCES shop_customer (id)"
)


def test_alter_field_adds_foreign_key_constraint_err(make_app):
    """db_constraint=False -> True: Django adds the constraint with ADD CONSTRAINT."""
    app = make_app(
        [CUSTOMER, ORDER],
        [
            "migrations.AlterField('order', 'customer', "
            "models.ForeignKey('customer', null=True, on_delete=models.DO_NOTHING))"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == "shop_order"
    assert "shop_order" in finding.message and "shop_customer" in finding.message
    assert "SHARE ROW EXCLUSIVE" in finding.message and "(customer_id)" in finding.message
    assert "NOT VALID" in finding.fix and "VALIDATE CONSTRAINT" in finding.fix
    assert "SeparateDatabaseAndState" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "ShareRowExclusiveLock"
    assert finding.scans
    assert finding.plan_command


def test_add_field_foreign_key_with_default_err(make_app):
    """A column with a DEFAULT and REFERENCES is checked row by row."""
    app = make_app(
        [CUSTOMER, ORDER],
        [
            "migrations.AddField('order', 'payer', "
            "models.ForeignKey('customer', default=1, related_name='+', "
            "on_delete=models.CASCADE))"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.message.startswith("ADD COLUMN payer_id with a DEFAULT and a FOREIGN KEY")
    assert "ACCESS EXCLUSIVE" in finding.message
    assert finding.evidence.value == "observed"


RUNSQL_FOREIGN_KEYS = [
    ADD_FK,
    "ALTER TABLE shop_order ADD CONSTRAINT shop_order_ref_fk2 FOREIGN KEY (ref) "
    "REFERENCES shop_customer (id) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE shop_order ADD COLUMN payer bigint DEFAULT NULL REFERENCES shop_customer",
]


@pytest.mark.parametrize("sql", RUNSQL_FOREIGN_KEYS)
def test_runsql_foreign_key_err(make_app, sql):
    app = make_app([CUSTOMER, ORDER], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_order" and "shop_customer" in finding.message
    assert finding.evidence.value == "observed"
    if "ADD COLUMN" in sql:
        assert "without DEFAULT/REFERENCES" in finding.fix
    else:
        assert "Append NOT VALID" in finding.fix


def test_add_field_nullable_foreign_key_is_not_validated_ok(make_app):
    """ADD COLUMN ... REFERENCES without a default: PostgreSQL skips the check (all NULL).

    Only the non-concurrent index of the column is a hazard there.
    """
    app = make_app(
        [CUSTOMER, ORDER],
        [
            "migrations.AddField('order', 'payer', "
            "models.ForeignKey('customer', null=True, related_name='+', "
            "on_delete=models.CASCADE))"
        ],
    )
    report = app.audit()
    assert app.findings(report, RULE) == []
    assert len(app.findings(report, "add-index-non-concurrent")) == 1


def test_not_valid_then_validate_ok(make_app):
    app = make_app(
        [CUSTOMER, ORDER],
        [f"migrations.RunSQL({ADD_FK + ' NOT VALID'!r}, migrations.RunSQL.noop)"],
        [
            "migrations.RunSQL('ALTER TABLE shop_order VALIDATE CONSTRAINT shop_order_ref_fk', "
            "migrations.RunSQL.noop)"
        ],
    )
    report = app.audit(2, 3, together=False)
    assert [m.status for m in report.migrations] == ["audited", "audited"]
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [CUSTOMER, ORDER],
        [f"migrations.RunSQL({ADD_FK!r}, migrations.RunSQL.noop)"],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
