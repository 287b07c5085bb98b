"""Golden files for the CI formats (sarif, github, gitlab, markdown).

The reports are built directly, with findings of every severity, with and
without lines, locks, sizes, SQL and plan commands, so the goldens are
deterministic. Rule documentation comes from :data:`FAKE_RULES` (see
:func:`use_fake_rules`) so that rewording a real rule's docstring does not
touch these files. ``UPDATE_GOLDEN=1 pytest tests/test_report_formats.py``
rewrites them; read the diff before committing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import migration_guard.rules
from migration_guard.findings import (
    Blocks,
    Category,
    Evidence,
    Finding,
    Lock,
    OperationRef,
    Rewrite,
    Scan,
    Severity,
    TableSize,
)
from migration_guard.report import RenderOptions, render
from migration_guard.results import (
    AUDITED,
    FAILED,
    SKIPPED,
    AuditReport,
    MigrationResult,
    PostgresInfo,
)

from .goldens import assert_golden

FORMATS = {"sarif": "sarif.json", "github": "github.txt", "gitlab": "gitlab.json", "markdown": "md"}


# -- goldens -------------------------------------------------------------------------------


# -- deterministic rule documentation -------------------------------------------------------


class FakeRule:
    """Stands in for a Rule class: the renderers read these attributes only."""

    def __init__(self, rule_id: str, severity: Severity, category: Category, doc: str) -> None:
        self.id = rule_id
        self.severity = severity
        self.category = category
        self._doc = doc

    def title(self) -> str:
        return self._doc.splitlines()[0]

    def documentation(self) -> str:
        return "\n".join(self._doc.splitlines()[1:]).strip()


FAKE_RULES = {
    r.id: r
    for r in [
        FakeRule(
            "add-index-non-concurrent",
            Severity.ERROR,
            Category.LOCKING,
            "An index is built without CONCURRENTLY on an existing table.\n\n"
            "**Lock.** SHARE on the table: writes wait for the whole build.\n\n"
            "**Fix.** `AddIndexConcurrently` in a migration with `atomic = False`.",
        ),
        FakeRule(
            "alter-column-type-rewrite",
            Severity.ERROR,
            Category.LOCKING,
            "A column type change rewrites the table.\n\n"
            "**Lock.** ACCESS EXCLUSIVE for the whole rewrite.",
        ),
        FakeRule(
            "lock-timeout-missing",
            Severity.WARNING,
            Category.LOCKING,
            "No lock_timeout is set for migrations.",
        ),
        FakeRule(
            "run-python-no-reverse",
            Severity.WARNING,
            Category.REVERSIBILITY,
            "RunPython without reverse_code.\n\nThe migration cannot be rolled back.",
        ),
        FakeRule(
            "unused-ignore",
            Severity.INFO,
            Category.CORRECTNESS,
            "An ignore matches no finding.\n\nRemove it.",
        ),
        FakeRule(
            "migration-failed",
            Severity.ERROR,
            Category.CORRECTNESS,
            "The migration fails when applied to PostgreSQL.\n\nMake it apply.",
        ),
    ]
}


def use_fake_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(migration_guard.rules, "registry", lambda: dict(FAKE_RULES))


# -- reports ---------------------------------------------------------------------------------

PG = PostgresInfo(version="16.4", major=16, source="local", description="PostgreSQL 16.4 (local)")


def _finding(**kwargs: Any) -> Finding:
    defaults: dict[str, Any] = {
        "severity": Severity.ERROR,
        "category": Category.LOCKING,
        "fix": "",
        "app_label": "shop",
        "migration": "0002_add_index",
    }
    defaults.update(kwargs)
    return Finding(**defaults)


def sample_report() -> AuditReport:
    """Findings of every severity and shape; a clean, a failed and a skipped migration."""
    index = _finding(
        rule="add-index-non-concurrent",
        message="CREATE INDEX on shop_order runs without CONCURRENTLY: writes wait for the build.",
        fix="Use AddIndexConcurrently in a migration with atomic = False.",
        operation=OperationRef(
            0, "Create index order_created_idx on field(s) created", 16, "AddIndex"
        ),
        evidence=Evidence.OBSERVED,
        locks=(Lock("shop_order", "ShareLock", Blocks.WRITES),),
        scans=(Scan("shop_order", 1),),
        sql=('CREATE INDEX "order_created_idx" ON "shop_order" ("created");',),
        table="shop_order",
        plan_command="python manage.py plan_zero_downtime shop 0002_add_index",
        sizes=(TableSize("shop_order", 1234567, 987654321, 42.5),),
    )
    brief = _finding(
        rule="lock-timeout-missing",
        severity=Severity.WARNING,
        message="No lock_timeout: the lock request can queue behind a long transaction.",
        fix='Set MIGRATION_GUARD = {"lock_timeout": "5s"}.',
        operation=OperationRef(-1, "(whole migration)", 9, ""),
    )
    rewrite = _finding(
        rule="alter-column-type-rewrite",
        migration="0003_widen_total",
        message=(
            "ALTER COLUMN total TYPE bigint rewrites shop_order | and rebuilds its indexes\n"
            "while <ACCESS EXCLUSIVE> blocks reads & writes."
        ),
        fix="Expand/contract: add a bigint column, backfill in batches, swap.",
        operation=OperationRef(1, "Alter field total on order", 22, "AlterField"),
        evidence=Evidence.CONTRADICTED,
        locks=(
            Lock("shop_order", "AccessExclusiveLock", Blocks.READS_AND_WRITES),
            Lock("shop_orderitem", "ShareUpdateExclusiveLock", Blocks.NOTHING),
        ),
        rewrites=(Rewrite("shop_order", "shop_order"),),
        sql=(
            'ALTER TABLE "shop_order" ALTER COLUMN "total" TYPE bigint USING "total"::bigint;',
            "-- a comment with ``` backticks",
        ),
        table="shop_order",
        sizes=(
            TableSize("shop_order", 10, 8192),
            TableSize("shop_orderitem", 0, 0),
        ),
        notes=("The trace saw no rewrite: the table was empty.",),
    )
    no_reverse = _finding(
        rule="run-python-no-reverse",
        severity=Severity.WARNING,
        category=Category.REVERSIBILITY,
        app_label="accounts",
        migration="0004_backfill",
        message="RunPython(forwards) has no reverse_code: the migration cannot be unapplied.",
        fix="Pass reverse_code=migrations.RunPython.noop when nothing needs undoing.",
        operation=OperationRef(0, "Raw Python operation", None, "RunPython"),
    )
    unused = [
        _finding(
            rule="unused-ignore",
            severity=Severity.INFO,
            category=Category.CORRECTNESS,
            app_label="accounts",
            migration="0004_backfill",
            message=f"the ignore[{rule}] comment on line 7 matches no finding of this operation.",
            fix="Remove the comment, or correct the rule id or its line.",
            operation=OperationRef(0, "Raw Python operation", None, "RunPython"),
        )
        for rule in ("add-index-non-concurrent", "rename-field")
    ]
    failed = _finding(
        rule="migration-failed",
        category=Category.CORRECTNESS,
        app_label="blog",
        migration="0006_bad_sql",
        message='PostgreSQL rejected the migration: relation "nope" does not exist',
        fix="Make the operation apply.",
        operation=OperationRef(0, "Raw SQL operation", 12, "RunSQL"),
        sql=("ALTER TABLE nope ADD COLUMN x int",),
    )
    return AuditReport(
        change="4 migrations since origin/main",
        postgres=PG,
        migrations=(
            MigrationResult(
                "shop",
                "0002_add_index",
                "shop/migrations/0002_add_index.py",
                True,
                AUDITED,
                (index, brief),
                operations=1,
            ),
            MigrationResult(
                "shop",
                "0003_widen_total",
                "shop/migrations/0003_widen_total.py",
                True,
                AUDITED,
                (rewrite,),
                operations=2,
            ),
            MigrationResult(
                "accounts",
                "0004_backfill",
                None,
                True,
                AUDITED,
                (no_reverse, *unused),
                operations=1,
            ),
            MigrationResult(
                "blog", "0005_add_nullable", "blog/migrations/0005_add_nullable.py", True, AUDITED
            ),
            MigrationResult(
                "blog",
                "0006_bad_sql",
                "blog/migrations/0006_bad_sql.py",
                True,
                FAILED,
                (failed,),
                error='relation "nope" does not exist',
            ),
            MigrationResult(
                "blog",
                "0007_after_bad",
                "blog/migrations/0007_after_bad.py",
                True,
                SKIPPED,
                error="depends on blog.0006_bad_sql, which failed",
            ),
        ),
        traced=True,
        notes=("production runs PostgreSQL 15 but the audit ran on PostgreSQL 16.4",),
        tool_version="9.9.9",
    )


def clean_report() -> AuditReport:
    return AuditReport(
        change="2 migrations since origin/main",
        postgres=PG,
        migrations=(
            MigrationResult("shop", "0008_safe", "shop/migrations/0008_safe.py", True, AUDITED),
            MigrationResult("blog", "0009_safe", "blog/migrations/0009_safe.py", True, AUDITED),
        ),
        traced=True,
        tool_version="9.9.9",
    )


def warnings_only_report() -> AuditReport:
    report = sample_report()
    kept = tuple(
        dataclasses.replace(
            m, findings=tuple(f for f in m.findings if f.severity is not Severity.ERROR)
        )
        for m in report.migrations
        if m.status == AUDITED
    )
    return AuditReport(
        change=report.change, postgres=PG, migrations=kept, traced=False, tool_version="9.9.9"
    )


def empty_report() -> AuditReport:
    return AuditReport(
        change="no migration files changed since origin/main",
        postgres=None,
        migrations=(),
        traced=True,
        notes=("no migrations to audit",),
        tool_version="9.9.9",
    )


REPORTS = {
    "sample": sample_report,
    "clean": clean_report,
    "warnings": warnings_only_report,
    "empty": empty_report,
}


# -- tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("which", sorted(REPORTS))
def test_golden(fmt, which, monkeypatch):
    use_fake_rules(monkeypatch)
    text = render(REPORTS[which](), fmt, RenderOptions())
    assert_golden(f"{which}.{FORMATS[fmt]}", text)


def test_markdown_cut_to_a_limit_is_golden(monkeypatch):
    from migration_guard.report.markdown import render_markdown

    use_fake_rules(monkeypatch)
    options = RenderOptions(report_url="https://ci.example/runs/1")
    text = render_markdown(sample_report(), options, max_chars=3000)
    assert len(text) <= 3000
    assert_golden("sample-cut.md", text)


def test_renderers_never_mutate_or_depend_on_order_of_calls(monkeypatch):
    use_fake_rules(monkeypatch)
    report = sample_report()
    first = {fmt: render(report, fmt) for fmt in FORMATS}
    second = {fmt: render(report, fmt) for fmt in reversed(list(FORMATS))}
    assert first == second
    assert report == sample_report()


def test_every_format_is_rendered_by_the_module_of_its_name_and_only_those_are_listed():
    """``formats()`` names the renderers without importing them (a text report does
    not pay for Markdown's template engine); importing every module of the package
    registers exactly those names, each from the module of that name."""
    import importlib
    import pkgutil

    import migration_guard.report as report_pkg

    registered_by: dict[str, str] = {}
    for module in pkgutil.iter_modules(report_pkg.__path__):
        if module.name.startswith("_"):
            continue
        loaded = importlib.import_module(f"migration_guard.report.{module.name}")
        for name, func in report_pkg._RENDERERS.items():
            if func.__module__ == loaded.__name__:
                registered_by[name] = module.name
    assert sorted(registered_by) == report_pkg.formats()
    assert all(name == module for name, module in registered_by.items())
    with pytest.raises(ValueError, match="unknown report format 'yaml'"):
        render(AuditReport(change="x", postgres=None, migrations=(), traced=False), "yaml")
