"""The ``migration-guard`` console script: rules, render (comment: tests/test_comment.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from migration_guard import __version__, rules
from migration_guard.cli import main
from migration_guard.comment import report_from_dict
from migration_guard.report import render

from .test_report_formats import REPORTS, sample_report, use_fake_rules


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(main, list(args), catch_exceptions=False, **kwargs)


def test_version_and_help():
    assert __version__ in invoke("--version").output
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("rules", "comment", "render"):
        assert command in result.output


def test_rules_lists_every_rule_with_severity_category_and_title():
    result = invoke("rules")
    assert result.exit_code == 0
    registry = rules.registry()
    lines = result.output.splitlines()
    assert lines[0].split() == ["RULE", "SEVERITY", "CATEGORY", "TITLE"]
    for rule_id, cls in registry.items():
        line = next(line for line in lines if line.split()[0:1] == [rule_id])
        assert str(cls.severity) in line.split()[1]
        assert str(cls.category) == line.split()[2]
        assert cls.title() in line
    assert f"{len(registry)} rules." in result.output


def test_rules_rule_id_prints_its_documentation():
    rule_id = "migration-failed"
    cls = rules.get(rule_id)
    result = invoke("rules", rule_id)
    assert result.exit_code == 0
    assert result.output.startswith(f"{rule_id}: {cls.title()}\n")
    assert cls.documentation() in result.output
    assert f"docs/rules/{rule_id}.md" in result.output


def test_unknown_rule_suggests_and_exits_2():
    result = CliRunner().invoke(main, ["rules", "migration-faild"])
    assert result.exit_code == 2
    assert "unknown rule 'migration-faild'" in result.output
    assert "Did you mean migration-failed" in result.output
    assert "`migration-guard rules` lists them all" in result.output


@pytest.mark.parametrize("which", sorted(REPORTS))
def test_json_report_round_trips_through_the_loader(which):
    report = REPORTS[which]()
    assert report_from_dict(json.loads(render(report, "json"))) == report


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "gitlab", "markdown"])
def test_render_a_saved_json_report_in_any_format(fmt, tmp_path, monkeypatch):
    use_fake_rules(monkeypatch)
    report = sample_report()
    saved = tmp_path / "audit.json"
    saved.write_text(render(report, "json"))
    result = invoke("render", "--report", str(saved), "--format", fmt)
    assert result.exit_code == 0
    assert result.output == render(report, fmt)
    out = tmp_path / f"out.{fmt}"
    result = invoke("render", "--report", str(saved), "--format", fmt, "--output", str(out))
    assert result.exit_code == 0
    assert out.read_text() == render(report, fmt)


def test_render_errors_say_what_to_do(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["render", "--report", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "--format json --output" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("<html>")
    result = runner.invoke(main, ["render", "--report", str(bad)])
    assert result.exit_code == 2 and "is not JSON" in result.output
    bad.write_text(json.dumps({"schema_version": 1, "migrations": []}))
    result = runner.invoke(main, ["render", "--report", str(bad)])
    assert result.exit_code == 2 and "schema_version 1" in result.output
    bad.write_text(json.dumps([1, 2]))
    result = runner.invoke(main, ["render", "--report", str(bad)])
    assert result.exit_code == 2 and "not a migration-guard JSON report" in result.output


def test_pre_commit_hook_runs_the_audit_statically_on_migration_files():
    import re
    from pathlib import Path

    text = (Path(__file__).parent.parent / ".pre-commit-hooks.yaml").read_text()
    fields = dict(
        line.strip().lstrip("- ").split(": ", 1)
        for line in text.splitlines()
        if ": " in line and not line.lstrip().startswith("#")
    )
    assert fields["id"] == "migration-audit"
    assert fields["entry"] == "python manage.py migration_audit --no-trace"
    assert fields["language"] == "system"
    assert fields["pass_filenames"] == "false"
    files = re.compile(fields["files"])
    assert files.search("shop/migrations/0002_add_index.py")
    assert not files.search("shop/models.py")
