"""run-python-no-reverse: RunPython without reverse_code is irreversible."""

from __future__ import annotations

from migration_guard.findings import Category, Severity

from ..harness import Migration

RULE = "run-python-no-reverse"

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True))], "
    "options={'db_table': 'orders'})"
)
CODE = """
def forwards(apps, schema_editor):
    pass


def backwards(apps, schema_editor):
    pass
"""


def test_run_python_without_reverse_err(make_app):
    app = make_app([ORDER], Migration(["migrations.RunPython(forwards)"], extra=CODE))
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert finding.severity is Severity.WARNING
    assert finding.category is Category.REVERSIBILITY
    assert finding.operation.index == 0
    assert "forwards" in finding.message
    assert f"migrate {app.label} {app.names[0]}" in finding.message
    assert "IrreversibleError" in finding.message


def test_inside_separate_database_and_state_err(make_app):
    app = make_app(
        [ORDER],
        Migration(
            [
                "migrations.SeparateDatabaseAndState(database_operations=["
                "migrations.RunPython(forwards)])"
            ],
            extra=CODE,
        ),
    )
    report = app.audit()
    assert len(app.findings(report, RULE)) == 1


def test_first_migration_is_undone_to_zero_err(make_app):
    app = make_app(Migration([ORDER, "migrations.RunPython(forwards)"], extra=CODE))
    report = app.audit()
    (finding,) = app.findings(report, RULE)
    assert f"migrate {app.label} zero" in finding.message


def test_reverse_function_ok(make_app):
    app = make_app([ORDER], Migration(["migrations.RunPython(forwards, backwards)"], extra=CODE))
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_noop_reverse_ok(make_app):
    app = make_app(
        [ORDER],
        Migration(["migrations.RunPython(forwards, migrations.RunPython.noop)"], extra=CODE),
    )
    report = app.audit()
    assert app.findings(report, RULE) == []


def test_tables_created_in_the_change_still_count_err(make_app):
    # Irreversibility does not depend on the table being busy.
    app = make_app([ORDER], Migration(["migrations.RunPython(forwards)"], extra=CODE))
    report = app.audit(1, 2)
    assert len(app.findings(report, RULE)) == 1
