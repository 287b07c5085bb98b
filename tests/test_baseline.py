"""Adopting on a project with history: --write-baseline records today's findings,
--baseline reports only new ones (and says how many it hid)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.core.management.base import CommandError

from migration_guard.baseline import (
    apply_baseline,
    baseline_of,
    fingerprinted,
    load_baseline,
    write_baseline,
)
from migration_guard.exceptions import ConfigurationError
from migration_guard.findings import OperationRef
from migration_guard.report import render
from migration_guard.report.sarif import FINGERPRINT_KEY, sarif_log

from .test_report_command import hazard_app, run_command
from .test_report_formats import sample_report


def test_baseline_file_is_sorted_readable_json_with_the_sarif_fingerprints(tmp_path):
    report = sample_report()
    path = tmp_path / "baseline.json"
    write_baseline(report, path)
    document = json.loads(path.read_text())
    assert document["version"] == 1
    entries = document["findings"]
    assert len(entries) == len(report.findings)
    keys = [(e["migration"], e.get("operation", -1), e["rule"], e["fingerprint"]) for e in entries]
    assert keys == sorted(keys)
    first = next(e for e in entries if e["rule"] == "add-index-non-concurrent")
    assert first == {
        "fingerprint": first["fingerprint"],
        "rule": "add-index-non-concurrent",
        "migration": "shop.0002_add_index",
        "operation": 0,
        "table": "shop_order",
    }
    sarif = sarif_log(report)["runs"][0]["results"]
    assert {e["fingerprint"] for e in entries} == {
        r["partialFingerprints"][FINGERPRINT_KEY] for r in sarif
    }
    gitlab = json.loads(render(report, "gitlab"))
    assert {e["fingerprint"] for e in entries} == {i["fingerprint"] for i in gitlab}
    # Writing twice gives the same bytes (a stable file in git).
    again = tmp_path / "again.json"
    write_baseline(report, again)
    assert again.read_bytes() == path.read_bytes()


def test_everything_in_the_baseline_is_hidden_and_counted(tmp_path):
    report = sample_report()
    baseline = write_baseline(report, tmp_path / "b.json")
    filtered = apply_baseline(report, baseline)
    assert filtered.findings == []
    assert filtered.exit_code == 0
    hidden = f"{len(report.findings)} finding(s) hidden by the baseline"
    assert filtered.notes[-1].startswith(hidden)
    assert [m.key for m in filtered.migrations] == [m.key for m in report.migrations]
    assert "finding(s) hidden by the baseline" in render(filtered, "text")


def test_only_new_findings_are_reported(tmp_path):
    old = sample_report()
    baseline = write_baseline(old, tmp_path / "b.json")
    first = old.migrations[0]
    new_finding = first.findings[0].replace(
        operation=OperationRef(5, "Create index other_idx", 40, "AddIndex"), table="shop_other"
    )
    moved = first.findings[1].replace(
        operation=dataclasses.replace(first.findings[1].operation, line=99), message="reworded"
    )
    changed = dataclasses.replace(first, findings=(first.findings[0], moved, new_finding))
    current = dataclasses.replace(old, migrations=(changed, *old.migrations[1:]))
    filtered = apply_baseline(current, baseline)
    assert filtered.findings == [new_finding]
    assert filtered.exit_code == 1
    assert any(n.startswith(f"{len(old.findings)} finding(s) hidden") for n in filtered.notes)


def test_duplicate_findings_are_told_apart():
    report = sample_report()
    prints = [fp for _, _, fp in fingerprinted(report)]
    assert len(prints) == len(set(prints))
    rules = [f.rule for _, f, _ in fingerprinted(report)]
    assert rules.count("unused-ignore") == 2


def test_stale_entries_are_reported(tmp_path):
    report = sample_report()
    baseline = write_baseline(report, tmp_path / "b.json")
    fixed = dataclasses.replace(
        report,
        migrations=(dataclasses.replace(report.migrations[0], findings=()), *report.migrations[1:]),
    )
    filtered = apply_baseline(fixed, baseline)
    assert any("2 baseline entries" in n and "--write-baseline" in n for n in filtered.notes)


def test_bad_baseline_files_say_what_to_do(tmp_path):
    with pytest.raises(ConfigurationError, match="create it with --write-baseline"):
        load_baseline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        load_baseline(bad)
    bad.write_text(json.dumps({"version": 99, "findings": []}))
    with pytest.raises(ConfigurationError, match="version 99"):
        load_baseline(bad)
    bad.write_text(json.dumps({"version": 1, "findings": [{"rule": "x"}]}))
    with pytest.raises(ConfigurationError, match="no fingerprint"):
        load_baseline(bad)


def test_baseline_document_has_no_volatile_values():
    document = baseline_of(sample_report())
    text = json.dumps(document)
    assert "9.9.9" not in text  # no tool version: upgrading does not rewrite the file
    assert "line" not in {k for e in document["findings"] for k in e}


# -- the command ---------------------------------------------------------------------------


def test_write_baseline_then_audit_with_it(make_app, pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    app = hazard_app(make_app)
    path = tmp_path / "migration-guard-baseline.json"
    code, out, err = run_command(app, pg_url, "--write-baseline", str(path))
    assert code == 0, out + err
    entries = json.loads(path.read_text())["findings"]
    assert any(e["rule"] == "add-index-non-concurrent" for e in entries)
    assert f"{len(entries)} finding(s) hidden by the baseline" in out

    code, out, err = run_command(app, pg_url, "--baseline", str(path))
    assert code == 0, out + err
    assert f"{len(entries)} finding(s) hidden by the baseline" in out

    code, out, err = run_command(app, pg_url)
    assert code == 1, "without the baseline the findings are back"


def test_missing_baseline_fails_before_auditing(make_app, pg_url, tmp_path):
    app = hazard_app(make_app)
    with pytest.raises(CommandError, match="does not exist") as info:
        run_command(app, pg_url, "--baseline", str(tmp_path / "nope.json"))
    assert info.value.returncode == 2
