"""--format sarif: valid SARIF 2.1.0 (OASIS schema), rules from docstrings, stable fingerprints."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest

from migration_guard import rules
from migration_guard.baseline import fingerprint
from migration_guard.findings import OperationRef
from migration_guard.report import render
from migration_guard.report.sarif import DOCS_BASE_URL, FINGERPRINT_KEY, sarif_log

from .test_report_formats import REPORTS, sample_report, use_fake_rules

SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)


def validate(document: dict) -> None:
    validator = jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_vendored_schema_is_the_oasis_2_1_0_schema():
    jsonschema.Draft4Validator.check_schema(SCHEMA)
    assert SCHEMA["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    assert SCHEMA["properties"]["version"]["enum"] == ["2.1.0"]


@pytest.mark.parametrize("which", sorted(REPORTS))
def test_output_validates_against_the_sarif_schema(which):
    validate(json.loads(render(REPORTS[which](), "sarif")))


def test_output_with_real_rule_docstrings_validates_and_documents_each_rule():
    """Every registered rule, as SARIF would describe it, passes the schema."""
    registry = rules.registry()
    assert registry, "no rules registered"
    report = sample_report()
    finding = report.migrations[0].findings[0]
    many = [
        dataclasses.replace(finding, rule=rule_id, operation=OperationRef(n, "op", n + 1, "X"))
        for n, rule_id in enumerate(sorted(registry))
    ]
    migrations = (dataclasses.replace(report.migrations[0], findings=tuple(many)),)
    document = sarif_log(dataclasses.replace(report, migrations=migrations))
    validate(document)
    described = document["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in described] == sorted(registry)
    for descriptor in described:
        cls = registry[descriptor["id"]]
        assert descriptor["shortDescription"]["text"] == cls.title()
        assert descriptor["fullDescription"]["text"] == (cls.documentation() or cls.title())
        assert descriptor["helpUri"] == f"{DOCS_BASE_URL}{descriptor['id']}.md"
        expected = {"error": "error", "warning": "warning", "info": "note"}[str(cls.severity)]
        assert descriptor["defaultConfiguration"]["level"] == expected


def test_results_point_at_the_migration_file_and_line(monkeypatch):
    use_fake_rules(monkeypatch)
    run = sarif_log(sample_report())["runs"][0]
    results = run["results"]
    first = results[0]
    assert first["ruleId"] == "add-index-non-concurrent"
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    assert first["level"] == "error"
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "shop/migrations/0002_add_index.py"
    assert location["region"]["startLine"] == 16
    # No line known: line 1 of the (conventional) file.
    no_line = next(r for r in results if r["ruleId"] == "run-python-no-reverse")
    assert no_line["locations"][0]["physicalLocation"]["region"] == {"startLine": 1}
    assert (
        no_line["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        == "accounts/migrations/0004_backfill.py"
    )
    levels = {r["ruleId"]: r["level"] for r in results}
    assert levels["unused-ignore"] == "note"
    assert levels["lock-timeout-missing"] == "warning"
    assert run["tool"]["driver"]["version"] == "9.9.9"
    assert run["tool"]["driver"]["semanticVersion"] == "9.9.9"


def test_fingerprints_ignore_lines_and_wording_but_not_identity():
    report = sample_report()
    finding = report.migrations[0].findings[0]
    moved = finding.replace(
        operation=dataclasses.replace(finding.operation, line=99),
        message="reworded",
        fix="reworded too",
    )
    assert fingerprint(moved) == fingerprint(finding)
    assert fingerprint(finding.replace(table="other")) != fingerprint(finding)
    assert fingerprint(finding.replace(migration="0009_x")) != fingerprint(finding)
    assert fingerprint(finding.replace(app_label="blog")) != fingerprint(finding)
    assert fingerprint(finding.replace(rule="lock-timeout-missing")) != fingerprint(finding)
    other_op = dataclasses.replace(finding.operation, index=3)
    assert fingerprint(finding.replace(operation=other_op)) != fingerprint(finding)


def test_partial_fingerprints_are_unique_within_a_run_and_survive_edits():
    report = sample_report()
    results = sarif_log(report)["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in results]
    assert len(prints) == len(set(prints)), "two results share a fingerprint"
    # An unrelated edit above the operations moves every line: fingerprints stay.
    shifted = dataclasses.replace(
        report,
        migrations=tuple(
            dataclasses.replace(
                m,
                findings=tuple(
                    f.replace(operation=dataclasses.replace(f.operation, line=(f.line or 0) + 5))
                    if f.operation
                    else f
                    for f in m.findings
                ),
            )
            for m in report.migrations
        ),
    )
    again = sarif_log(shifted)["runs"][0]["results"]
    assert [r["partialFingerprints"][FINGERPRINT_KEY] for r in again] == prints


def test_rule_of_an_uninstalled_plugin_still_gets_a_descriptor(monkeypatch):
    monkeypatch.setattr(rules, "registry", lambda: {})
    document = sarif_log(sample_report())
    validate(document)
    ids = [r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]]
    assert "add-index-non-concurrent" in ids
