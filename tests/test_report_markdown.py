"""--format markdown: the merge-request comment (escaping, verdicts, cutting to a limit)."""

from __future__ import annotations

import dataclasses
import re

from migration_guard.findings import Category, Finding, OperationRef, Severity
from migration_guard.report import RenderOptions, render
from migration_guard.report.markdown import MARKER, escape_cell, fence, render_markdown
from migration_guard.results import AUDITED, AuditReport, MigrationResult

from .test_report_formats import clean_report, empty_report, sample_report, use_fake_rules


def test_starts_with_the_hidden_marker():
    for report in (sample_report(), clean_report(), empty_report()):
        assert render(report, "markdown").splitlines()[0] == MARKER


def test_clean_report_says_so_in_one_short_verdict():
    text = render(clean_report(), "markdown")
    assert "No unsafe operations" in text
    assert "<details>" not in text
    assert "| Rule |" not in text
    assert len(text) < 400


def test_cells_escape_pipes_newlines_and_html():
    assert escape_cell("a | b\nc\r\nd <b>x</b> & y") == "a \\| b<br>c<br>d \\<b\\>x\\</b\\> \\& y"


def test_table_rows_keep_their_column_count_whatever_the_text():
    report = sample_report()
    nasty = (
        report.migrations[0]
        .findings[0]
        .replace(
            operation=OperationRef(0, "Alter | pipes\nand lines", 3, "AlterField"),
            message="x | y",
        )
    )
    migrations = (dataclasses.replace(report.migrations[0], findings=(nasty,)),)
    text = render(dataclasses.replace(report, migrations=migrations), "markdown")
    header = next(line for line in text.splitlines() if line.startswith("| | Rule"))
    rows = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert rows
    unescaped = re.compile(r"(?<!\\)\|")
    for row in rows:
        assert len(unescaped.findall(row)) == len(unescaped.findall(header))


def test_code_fence_is_longer_than_backticks_inside():
    assert fence("select 1") == "```"
    assert fence("-- ``` here") == "````"
    assert fence("````` five") == "``````"


def test_details_carry_sql_fix_and_plan_command(monkeypatch):
    use_fake_rules(monkeypatch)
    text = render(sample_report(), "markdown")
    assert text.count("<details>") == text.count("</details>") == 7
    assert 'CREATE INDEX "order_created_idx"' in text
    assert "python manage.py plan_zero_downtime shop 0002_add_index" in text
    assert "Use AddIndexConcurrently" in text
    assert "941.9 MB" in text


def _many(count: int) -> AuditReport:
    findings = tuple(
        Finding(
            rule="add-index-non-concurrent",
            severity=Severity.ERROR,
            category=Category.LOCKING,
            message=f"finding {n}: " + "long text " * 40,
            fix="fix it",
            app_label="shop",
            migration="0002_big",
            operation=OperationRef(n, f"operation {n}", n + 10, "AddIndex"),
            sql=("CREATE INDEX x ON t (c); " * 10,),
            table=f"t{n}",
        )
        for n in range(count)
    )
    result = MigrationResult(
        "shop", "0002_big", "shop/migrations/0002_big.py", True, AUDITED, findings
    )
    return AuditReport(change="big", postgres=None, migrations=(result,), traced=True)


def test_cut_to_limit_keeps_the_table_drops_details_and_links_the_full_report():
    report = _many(60)
    full = render_markdown(report)
    assert len(full) > 20_000
    options = RenderOptions(report_url="https://ci.example/job/7")
    text = render_markdown(report, options, max_chars=20_000)
    assert len(text) <= 20_000
    assert text.startswith(MARKER)
    assert "cut to fit" in text
    assert "(https://ci.example/job/7)" in text
    assert text.count("<details>") == text.count("</details>") < 60
    assert text.count("| ❌ |") == 60, "every finding stays in the table"
    assert text.rstrip().endswith("</sub>")


def test_cut_harder_leaves_table_rows_out_too():
    text = render_markdown(_many(200), RenderOptions(), max_chars=5_000)
    assert len(text) <= 5_000
    assert "<details>" not in text
    assert 0 < text.count("| ❌ |") < 200
    assert "left out of the table" in text
    assert "artifacts" in text  # no URL given: where to find the full report
