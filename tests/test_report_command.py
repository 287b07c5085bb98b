"""The CI formats from a real audit: golden files of a small app audited on PostgreSQL,
several --format/--output pairs from one audit, GitHub annotations in Actions."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test.utils import override_settings

from migration_guard.comment import report_from_dict
from migration_guard.report import RenderOptions, render
from migration_guard.results import AuditReport, PostgresInfo

from .test_report_formats import FORMATS, assert_golden, use_fake_rules
from .test_report_sarif import validate

CREATE_ORDER = (
    "migrations.CreateModel('Order', ["
    "('id', models.BigAutoField(primary_key=True)), "
    "('created', models.DateTimeField()), "
    "('note', models.CharField(max_length=20, null=True))])"
)
ADD_INDEX = (
    "migrations.AddIndex('order', models.Index(fields=['created'], name='order_created_idx'))"
)
ADD_NULLABLE = "migrations.AddField('order', 'qty', models.IntegerField(null=True))"


def hazard_app(make_app):
    return make_app([CREATE_ORDER], [ADD_INDEX, ADD_NULLABLE])


def run_command(app: Any, url: str, *args: str) -> tuple[int, str, str]:
    """``manage.py migration_audit APP LAST --postgres url ...``; (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    installed = ["django.contrib.contenttypes", "migration_guard", app.label]
    with override_settings(INSTALLED_APPS=installed, MIGRATION_GUARD={}):
        try:
            call_command(
                "migration_audit",
                app.label,
                app.names[-1],
                "--postgres",
                "url",
                "--database-url",
                url,
                *args,
                stdout=out,
                stderr=err,
            )
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def normalise(report: AuditReport, label: str, root: Path) -> AuditReport:
    """The report with what varies between runs and machines replaced: the app's random
    label, the temporary directory, versions, durations and run notes."""
    text = json.dumps(report.to_dict())
    text = text.replace(root.as_posix().rstrip("/") + "/", "")
    text = re.sub(rf"\b{label}", "inventory", text)
    data = json.loads(text)
    data["notes"] = []
    for migration in data["migrations"]:
        migration["duration_ms"] = None
        for finding in migration["findings"]:
            finding["duration_ms"] = None
    normal = report_from_dict(data)
    return AuditReport(
        change=normal.change,
        postgres=PostgresInfo("16.0", 16, "local", "PostgreSQL 16.0 (local)"),
        migrations=normal.migrations,
        traced=normal.traced,
        fail_on=normal.fail_on,
        notes=(),
        tool_version="0.0.0",
    )


def test_real_audit_goldens(make_app, monkeypatch):
    app = hazard_app(make_app)
    # lock_timeout set: only the index hazard is reported, not the advice about timeouts.
    report = normalise(app.audit(lock_timeout="5s"), app.label, app.factory.root)
    rules = sorted({f.rule for f in report.findings})
    assert "add-index-non-concurrent" in rules
    assert report.migrations[0].path == "inventory/migrations/0002_m2.py"
    use_fake_rules(monkeypatch)
    for fmt, suffix in FORMATS.items():
        assert_golden(f"real-audit.{suffix}", render(report, fmt, RenderOptions()))
    validate(json.loads(render(report, "sarif")))


def test_several_formats_from_one_audit(make_app, pg_url, tmp_path, monkeypatch):
    calls = []
    from migration_guard import engine

    real_run_audit = engine.run_audit

    def counting_run_audit(*args, **kwargs):
        calls.append(args)
        return real_run_audit(*args, **kwargs)

    # the command imports the engine when it runs (a missing driver is then exit 2)
    monkeypatch.setattr(engine, "run_audit", counting_run_audit)
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    app = hazard_app(make_app)
    outputs = {fmt: tmp_path / f"audit.{fmt}" for fmt in ("json", "sarif", "gitlab", "markdown")}
    args = []
    for fmt, path in outputs.items():
        args += ["--format", fmt, "--output", str(path)]
    args += ["--format", "github"]  # the one without --output goes to stdout
    code, out, err = run_command(app, pg_url, *args)
    assert code == 1, err
    assert len(calls) == 1, "one audit for every report"
    for fmt, path in outputs.items():
        assert path.exists(), fmt
        assert f"wrote {fmt} report to {path}" in err
    data = json.loads(outputs["json"].read_text())
    total = sum(len(m["findings"]) for m in data["migrations"])
    assert total >= 1
    sarif = json.loads(outputs["sarif"].read_text())
    validate(sarif)
    assert len(sarif["runs"][0]["results"]) == total
    assert len(json.loads(outputs["gitlab"].read_text())) == total
    assert outputs["markdown"].read_text().startswith("<!-- migration-guard-report -->")
    assert out.count("::") >= 2 * total and out.startswith("::error ")
    # Every report is the same audit: the JSON rebuilds into the same markdown.
    rebuilt = render(report_from_dict(data), "markdown")
    assert rebuilt == outputs["markdown"].read_text()


def test_output_without_format_is_refused(make_app, pg_url, tmp_path):
    app = hazard_app(make_app)
    with pytest.raises(CommandError, match="pair each --output with a --format"):
        run_command(app, pg_url, "--output", str(tmp_path / "a"), "--output", str(tmp_path / "b"))


def test_github_annotations_follow_the_text_report_in_actions(make_app, pg_url, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    app = hazard_app(make_app)
    code, out, err = run_command(app, pg_url)
    assert code == 1
    text, _, annotations = out.partition("::error ")
    assert "Change:" in text and "error(s)" in text
    assert "add-index-non-concurrent" in annotations
    assert "::" not in err


def test_github_annotations_go_to_stderr_when_stdout_is_json(make_app, pg_url, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    app = hazard_app(make_app)
    code, out, err = run_command(app, pg_url, "--format", "json")
    assert code == 1
    json.loads(out)  # stdout stays valid JSON
    assert "::error " in err


def test_github_annotations_can_be_turned_off(make_app, pg_url, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    app = hazard_app(make_app)
    code, out, err = run_command(app, pg_url, "--no-github-annotations")
    assert code == 1
    assert "::error" not in out + err


def test_no_annotations_outside_actions(make_app, pg_url, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    app = hazard_app(make_app)
    code, out, err = run_command(app, pg_url)
    assert code == 1
    assert "::error" not in out + err
