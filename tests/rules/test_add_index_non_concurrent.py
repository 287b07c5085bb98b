"""add-index-non-concurrent: CREATE INDEX without CONCURRENTLY on an existing table."""

from __future__ import annotations

from tests.harness import Migration

RULE = "add-index-non-concurrent"
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


ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField(null=True)), "
    "('qty', models.IntegerField(null=True)), "
    "('sku', models.CharField(max_length=20, null=True))], "
    "options={'db_table': 'shop_order'})"
)
CUSTOMER = (
    "migrations.CreateModel('Customer', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'shop_customer'})"
)
CONCURRENT = "from django.contrib.postgres.operations import AddIndexConcurrently"


def _modes(finding):
    return {lock.mode for lock in finding.locks}


def test_add_index_err(make_app):
    app = make_app(
        [ORDER],
        ["migrations.AddIndex('order', models.Index(fields=['created'], name='o_created_idx'))"],
    )
    report = app.audit()
    table = "shop_order"
    assert _family(app, report) == [RULE]
    (finding,) = app.findings(report, RULE)
    assert finding.severity.value == "error"
    assert finding.table == table
    assert '"o_created_idx"' in finding.message and table in finding.message
    assert "SHARE" in finding.message and "INSERT, UPDATE and DELETE" in finding.message
    assert "AddIndexConcurrently" in finding.fix
    assert finding.evidence.value == "observed"
    assert _modes(finding) == {"ShareLock"}
    assert finding.scans
    assert finding.plan_command and "plan_zero_downtime" in finding.plan_command


def test_db_index_on_charfield_flags_both_indexes_err(make_app):
    app = make_app(
        [ORDER],
        [
            "migrations.AlterField('order', 'sku', "
            "models.CharField(max_length=20, null=True, db_index=True))"
        ],
    )
    report = app.audit()
    findings = app.findings(report, RULE)
    assert len(findings) == 2
    plain, like = sorted(findings, key=lambda f: "_like" in f.message)
    assert "db_index=True on sku" in plain.message
    assert "_like" in like.message and "varchar_pattern_ops" in like.message
    assert all(f.evidence.value == "observed" and "ShareLock" in _modes(f) for f in findings)
    assert "CREATE INDEX CONCURRENTLY" in plain.fix and "SeparateDatabaseAndState" in plain.fix


def test_foreign_key_index_err(make_app):
    app = make_app(
        [ORDER, CUSTOMER],
        [
            "migrations.AddField('order', 'customer', "
            "models.ForeignKey('customer', null=True, on_delete=models.CASCADE))"
        ],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    customer = "shop_customer"
    assert "ForeignKey column customer_id" in finding.message
    # The FK's SHARE ROW EXCLUSIVE on the referenced table is held during the build.
    assert f"SHARE ROW EXCLUSIVE on {customer}" in finding.message
    # The trace reports the index build's own SHARE lock, and notes the ACCESS EXCLUSIVE
    # the ADD COLUMN took earlier in the same transaction, held during the build.
    assert finding.evidence.value == "observed"
    (own,) = finding.locks
    assert (own.relation, own.mode, own.taken_by) == ("shop_order", "ShareLock", None)
    # ... and the lock the same transaction holds on the referenced table meanwhile, with
    # who took it (the ADD COLUMN ... REFERENCES, not the deferred index build itself):
    # writes to shop_customer wait for the whole build too.
    (held,) = finding.held
    assert (held.relation, held.mode) == (customer, "ShareRowExclusiveLock")
    assert held.taken_by == "operations[0] AddField's ALTER TABLE ADD COLUMN"
    assert any("already under ACCESS EXCLUSIVE" in note for note in finding.notes)
    assert "db_index=False" in finding.fix


def test_alter_index_together_err(make_app):
    app = make_app([ORDER], ["migrations.AlterIndexTogether('order', {('qty', 'sku')})"])
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert "index_together" in finding.message
    assert finding.evidence.value == "observed"


def test_conditional_unique_constraint_is_an_index_err(make_app):
    """Django emits CREATE UNIQUE INDEX: reported here, not by add-unique-constraint."""
    app = make_app(
        [ORDER],
        [
            "migrations.AddConstraint('order', models.UniqueConstraint(fields=['sku'], "
            "condition=models.Q(qty__gt=0), name='o_sku_uniq'))"
        ],
    )
    report = app.audit()
    assert _family(app, report) == [RULE]
    (finding,) = app.findings(report, RULE)
    assert finding.message.startswith('CREATE UNIQUE INDEX "o_sku_uniq"')
    assert _modes(finding) == {"ShareLock"}


def test_runsql_create_index_err(make_app):
    app = make_app(
        [ORDER],
        ["migrations.RunSQL('CREATE INDEX o_qty_idx ON shop_order (qty)', 'DROP INDEX o_qty_idx')"],
    )
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.table == "shop_order"
    assert '"o_qty_idx"' in finding.message
    assert "CONCURRENTLY" in finding.fix and "atomic = False" in finding.fix
    assert finding.evidence.value == "observed"
    assert _modes(finding) == {"ShareLock"}


def test_runsql_create_index_concurrently_ok(make_app):
    app = make_app(
        [ORDER],
        Migration(
            ["migrations.RunSQL('CREATE INDEX CONCURRENTLY o_qty_idx ON shop_order (qty)')"],
            atomic=False,
        ),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_add_index_concurrently_ok(make_app):
    app = make_app(
        [ORDER],
        Migration(
            ["AddIndexConcurrently('order', models.Index(fields=['created'], name='o_c_idx'))"],
            atomic=False,
            imports=CONCURRENT,
        ),
    )
    report = app.audit()
    assert report.migrations[0].status == "audited"
    assert app.findings(report, RULE) == []


def test_table_created_earlier_in_the_same_change_ok(make_app):
    app = make_app(
        [ORDER, CUSTOMER],
        [
            "migrations.AddIndex('order', models.Index(fields=['created'], name='o_c_idx'))",
            "migrations.AddField('order', 'customer', "
            "models.ForeignKey('customer', null=True, on_delete=models.CASCADE))",
        ],
    )
    report = app.audit(1, 2)
    assert app.findings(report, RULE) == []
