"""--format github: workflow commands, escaped the way the Actions runner unescapes them."""

from __future__ import annotations

from migration_guard.report import render
from migration_guard.report.github import (
    annotation,
    automatic,
    escape_data,
    escape_property,
    on_stdout,
)

from .test_report_formats import clean_report, sample_report


def unescape_data(text: str) -> str:
    """What the runner does (actions/toolkit command.ts, in reverse order)."""
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%25", "%")


def unescape_property(text: str) -> str:
    return unescape_data(text.replace("%3A", ":").replace("%2C", ","))


def test_escaping_round_trips():
    nasty = "100% sure: a, b\r\nnext %0A literal"
    assert escape_data(nasty) == "100%25 sure: a, b%0D%0Anext %250A literal"
    assert unescape_data(escape_data(nasty)) == nasty
    assert escape_property(nasty) == "100%25 sure%3A a%2C b%0D%0Anext %250A literal"
    assert unescape_property(escape_property(nasty)) == nasty


def test_one_command_per_finding_by_severity():
    lines = render(sample_report(), "github").splitlines()
    assert len(lines) == 7
    assert [line.split(" ", 1)[0] for line in lines] == [
        "::error",
        "::warning",
        "::error",
        "::warning",
        "::notice",
        "::notice",
        "::error",
    ]
    assert all("\n" not in line and "\r" not in line for line in lines)


def test_properties_and_message_parse_back():
    report = sample_report()
    result = report.migrations[1]
    finding = result.findings[0].replace(app_label="shop,x", migration="0003:y")
    line = annotation(finding, result)
    command, _, message = line[2:].partition("::")
    name, _, props = command.partition(" ")
    assert name == "error"
    parsed = dict(p.split("=", 1) for p in props.split(","))
    assert parsed["file"] == "shop/migrations/0003_widen_total.py"
    assert parsed["line"] == "22"
    assert unescape_property(parsed["title"]) == "alter-column-type-rewrite (shop.0003_widen_total)"
    text = unescape_data(message)
    assert text.startswith("ALTER COLUMN total TYPE bigint rewrites shop_order |")
    assert "\nwhile <ACCESS EXCLUSIVE>" in text
    assert "\nFix: Expand/contract" in text


def test_no_line_means_no_line_property():
    report = sample_report()
    result = report.migrations[2]
    line = annotation(result.findings[0], result)
    assert ",line=" not in line
    assert line.startswith("::warning file=accounts/migrations/0004_backfill.py,title=")


def test_clean_report_prints_nothing():
    assert render(clean_report(), "github") == ""


def test_automatic_only_in_actions_and_not_twice():
    assert automatic({"GITHUB_ACTIONS": "true"}, ["text"], disabled=False)
    assert not automatic({"GITHUB_ACTIONS": "true"}, ["text"], disabled=True)
    assert not automatic({"GITHUB_ACTIONS": "true"}, ["text", "github"], disabled=False)
    assert not automatic({}, ["text"], disabled=False)
    assert not automatic({"GITHUB_ACTIONS": "false"}, ["text"], disabled=False)


def test_annotations_leave_a_machine_report_on_stdout_alone():
    assert on_stdout([("text", "-")])
    assert on_stdout([("json", "out.json")])
    assert not on_stdout([("json", "-")])
    assert not on_stdout([("markdown", "-"), ("sarif", "a.sarif")])
