"""observed-previous-release-failure: the previous release's queries failed (--rehearse)."""

from __future__ import annotations

RULE = "observed-previous-release-failure"

ITEM = (
    "migrations.CreateModel('Item', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('code', models.CharField(max_length=40)), "
    "('qty', models.IntegerField())], options={'db_table': 'op_item'})"
)
REHEARSE = {"rehearse": True, "rehearse_rows": 300, "rehearse_rate": 50.0}


def check(condition: str) -> str:
    """RunSQL adding a CHECK without validating existing rows: no rule's concern."""
    return (
        f"migrations.RunSQL('ALTER TABLE op_item ADD CONSTRAINT op_item_qty CHECK ({condition}) "
        "NOT VALID', 'ALTER TABLE op_item DROP CONSTRAINT op_item_qty')"
    )


def test_writes_a_new_constraint_rejects_err(make_app):
    app = make_app([ITEM], [check("qty < 0")])  # the old code writes positive quantities
    report = app.audit(**REHEARSE)
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error" and finding.category.value == "compatibility"
    assert finding.evidence.value == "observed" and finding.table == "op_item"
    assert finding.operation is not None and finding.operation.index == 0
    (traffic,) = finding.traffic
    failing = {k.kind for k in traffic.failing}
    assert failing == {"insert", "update"}
    assert 'violates check constraint "op_item_qty"' in traffic.kinds[2].errors[0][0]
    assert "While and after RunSQL (operations[0]) ran" in finding.message
    assert "INSERT" in finding.message and "No rule predicted it" in finding.message
    assert "expand/contract" in finding.fix
    assert app.rules(report) == [RULE]


def test_a_constraint_the_old_code_satisfies_ok(make_app):
    app = make_app([ITEM], [check("qty > 0")])
    report = app.audit(**REHEARSE)
    assert app.rules(report) == []
    (migration,) = report.migrations
    assert migration.rehearsal is not None and migration.rehearsal.tables[0].failed == 0


def test_a_rule_that_predicted_it_speaks_for_it(make_app):
    app = make_app([ITEM], ["migrations.RemoveField('item', 'code')"])
    report = app.audit(**REHEARSE)
    assert app.rules(report) == ["remove-field"]
    (finding,) = app.findings(report, "remove-field")
    assert finding.evidence.value == "observed" and finding.traffic[0].failed >= 1


def test_a_table_created_earlier_in_the_change_ok(make_app):
    app = make_app(
        ["migrations.CreateModel('Other', [('id', models.BigAutoField(primary_key=True))])"],
        [ITEM],
        [check("qty < 0")],
    )
    report = app.audit(2, 3, **REHEARSE)
    assert app.rules(report) == []


def test_without_the_rehearsal_nothing_is_seen_ok(make_app):
    app = make_app([ITEM], [check("qty < 0")])
    assert app.rules(app.audit()) == []
