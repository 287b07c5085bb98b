"""add-unique-constraint: UNIQUE / PRIMARY KEY built under ACCESS EXCLUSIVE on an existing table."""

from __future__ import annotations

import pytest

from tests.harness import Migration

RULE = "add-unique-constraint"
#: This family of rules: each hazard is reported by exactly the expected ones.
FAMILY = {
    "add-index-non-concurrent",
    "drop-index-non-concurrent",
    "add-unique-constraint",
    "add-foreign-key-validating",
    "add-check-constraint-validating",
    "add-column-check-scan",
    "concurrently-in-atomic-migration",
    "reindex-non-concurrent",
}


def _family(app, report):
    return [rule for rule in app.rules(report) if rule in FAMILY]


ITEM = (
    "migrations.CreateModel('Item', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(null=True)), "
    "('pos', models.IntegerField(null=True)), "
    "('sku', models.CharField(max_length=20, null=True))], "
    "options={'db_table': 'shop_item'})"
)
BARE = "migrations.RunSQL('CREATE TABLE shop_bare (a integer NOT NULL)', 'DROP TABLE shop_bare')"


def test_add_unique_constraint_err(make_app):
    app = make_app(
        [ITEM],
        [
            "migrations.AddConstraint('item', "
            "models.UniqueConstraint(fields=['qty', 'pos'], name='item_qty_pos_uniq'))"
        ],
    )
    report = app.audit()
    assert _family(app, report) == [RULE]
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == "shop_item"
    assert '"item_qty_pos_uniq"' in finding.message and "shop_item" in finding.message
    assert "ACCESS EXCLUSIVE" in finding.message
    assert "CREATE UNIQUE INDEX CONCURRENTLY" in finding.fix and "USING INDEX" in finding.fix
    assert finding.evidence.value == "observed"
    assert finding.locks[0].mode == "AccessExclusiveLock"
    assert finding.scans
    assert finding.plan_command


def test_alter_field_unique_err(make_app):
    """unique=True on a CharField: the constraint here, its _like index under the index rule."""
    app = make_app(
        [ITEM],
        [
            "migrations.AlterField('item', 'sku', "
            "models.CharField(max_length=20, null=True, unique=True))"
        ],
    )
    report = app.audit()
    assert _family(app, report) == ["add-index-non-concurrent", RULE]
    (finding,) = app.findings(report, RULE)
    assert "(sku)" in finding.message
    assert "SeparateDatabaseAndState" in finding.fix
    assert finding.evidence.value == "observed"


def test_alter_unique_together_err(make_app):
    app = make_app([ITEM], ["migrations.AlterUniqueTogether('item', {('qty', 'pos')})"])
    report = app.audit()
    assert _family(app, report) == [RULE]
    assert app.findings(report, RULE)[0].evidence.value == "observed"


def test_add_field_unique_inline_err(make_app):
    app = make_app(
        [ITEM], ["migrations.AddField('item', 'code', models.IntegerField(null=True, unique=True))"]
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.message.startswith("ADD COLUMN code UNIQUE on shop_item")
    assert "without unique=True" in finding.fix
    assert finding.evidence.value == "observed"


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("ALTER TABLE shop_bare ADD CONSTRAINT bare_a_uniq UNIQUE (a)", "UNIQUE"),
        ("ALTER TABLE shop_bare ADD PRIMARY KEY (a)", "PRIMARY KEY"),
    ],
)
def test_runsql_unique_or_primary_key_err(make_app, sql, what):
    app = make_app([BARE], [f"migrations.RunSQL({sql!r}, migrations.RunSQL.noop)"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_bare"
    assert f"ADD CONSTRAINT {what}" in finding.message
    assert f"{what} USING INDEX" in finding.fix
    assert finding.evidence.value == "observed"


def test_unique_index_concurrently_then_using_index_ok(make_app):
    app = make_app(
        [ITEM],
        Migration(
            [
                "migrations.RunSQL('CREATE UNIQUE INDEX CONCURRENTLY item_qp_idx "
                "ON shop_item (qty, pos)', 'DROP INDEX CONCURRENTLY item_qp_idx')"
            ],
            atomic=False,
        ),
        [
            "migrations.SeparateDatabaseAndState(state_operations=["
            "migrations.AddConstraint('item', models.UniqueConstraint("
            "fields=['qty', 'pos'], name='item_qp_uniq'))], database_operations=["
            "migrations.RunSQL('ALTER TABLE shop_item ADD CONSTRAINT item_qp_uniq "
            "UNIQUE USING INDEX item_qp_idx', "
            "'ALTER TABLE shop_item DROP CONSTRAINT item_qp_uniq')])"
        ],
    )
    report = app.audit(2, 3, together=False)
    assert [m.status for m in report.migrations] == ["audited", "audited"]
    assert app.findings(report, RULE) == []
    assert app.findings(report, "add-index-non-concurrent") == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [ITEM],
        [
            "migrations.AlterUniqueTogether('item', {('qty', 'pos')})",
            "migrations.AddField('item', 'code', models.IntegerField(null=True, unique=True))",
        ],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
