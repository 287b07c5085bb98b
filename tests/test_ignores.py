"""Silencing findings: ignore comments on an operation, the Migration attribute, and the
ignores that no longer match anything (``unused-ignore``)."""

from __future__ import annotations

from .harness import Migration

ORDER = (
    "migrations.CreateModel('Order', [('id', models.BigAutoField(primary_key=True)), "
    "('qty', models.IntegerField(default=0))])"
)
INDEX = "migrations.AddIndex('order', models.Index(fields=['qty'], name='q_idx'))"
RULE = "add-index-non-concurrent"


def _rules(report):
    return sorted(f.rule for f in report.findings if f.rule != "lock-timeout-missing")


def test_without_ignore_the_finding_is_reported(make_app):
    app = make_app([ORDER], [INDEX])
    assert _rules(app.audit()) == [RULE]


def test_comment_on_the_operation_line_silences_it(make_app):
    app = make_app([ORDER], [f"{INDEX},  # migration-guard: ignore[{RULE}] the table is tiny"])
    assert _rules(app.audit()) == []


def test_comment_on_the_line_above_silences_it(make_app):
    app = make_app([ORDER], [f"# Migration-Guard: ignore[{RULE}] the table is tiny\n{INDEX}"])
    assert _rules(app.audit()) == []


def test_migration_attribute_silences_the_whole_migration(make_app):
    app = make_app([ORDER], Migration([INDEX], attributes=f"migration_guard_ignore = [{RULE!r}]"))
    assert _rules(app.audit()) == []


def test_an_ignore_that_matches_nothing_is_reported(make_app):
    app = make_app(
        [ORDER],
        [f"{INDEX},  # migration-guard: ignore[{RULE}, rename-field]"],
        Migration(
            ["migrations.AddField('order', 'note', models.TextField(null=True))"],
            attributes="migration_guard_ignore = ['set-not-null']",
        ),
    )
    report = app.audit(2, 3)
    unused = [f for f in report.findings if f.rule == "unused-ignore"]
    texts = sorted(f.message for f in unused)
    assert len(unused) == 2, texts
    assert any("ignore[rename-field]" in t for t in texts)
    assert any("migration_guard_ignore lists 'set-not-null'" in t for t in texts)


def test_a_comment_on_no_operation_is_stray(make_app):
    app = make_app([ORDER], Migration([INDEX], extra=f"# migration-guard: ignore[{RULE}]\n"))
    report = app.audit()
    assert RULE in _rules(report)
    (stray,) = [f for f in report.findings if f.rule == "unused-ignore"]
    assert "is not on any operation's lines" in stray.message


def test_the_retired_rule_id_still_silences_what_took_its_findings(make_app):
    """observed-blocking-lock was folded into lock-timeout-missing."""
    app = make_app(
        [ORDER],
        [
            "migrations.AddField('order', 'note', models.TextField(null=True)),"
            "  # migration-guard: ignore[observed-blocking-lock]"
        ],
    )
    report = app.audit()
    assert [f.rule for f in report.findings] == []
