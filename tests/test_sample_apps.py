"""``migration_audit --all`` on sample_apps: every hazard flagged with the right rule,
no safe counterpart flagged. Golden files of the text and JSON output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import django
import jsonschema
import pytest

from .goldens import assert_golden

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_apps"

#: What the sample's README promises: hazard migration -> the rules it must raise.
EXPECTED = {
    ("accounts", "0002_hazard_not_null_without_db_default"): {"not-null-without-db-default"},
    ("accounts", "0005_hazard_add_foreign_key"): {"add-index-non-concurrent"},
    ("accounts", "0006_hazard_rename_field"): {"rename-field"},
    ("accounts", "0008_hazard_rename_model"): {"rename-model"},
    ("accounts", "0009_hazard_alter_db_table"): {"alter-db-table"},
    ("accounts", "0011_hazard_run_python_no_reverse"): {"run-python-no-reverse"},
    ("accounts", "0013_hazard_add_foreign_key_validating"): {"add-foreign-key-validating"},
    ("blog", "0003_hazard_alter_index_together"): {"add-index-non-concurrent"},
    ("blog", "0005_hazard_remove_index_together"): {"drop-index-non-concurrent"},
    ("blog", "0006_hazard_alter_field_db_index"): {"add-index-non-concurrent"},
    ("blog", "0007_hazard_alter_unique_together"): {"add-unique-constraint"},
    ("blog", "0008_hazard_set_not_null"): {"set-not-null"},
    ("blog", "0011_hazard_run_python_with_ddl"): {"run-python-with-ddl"},
    ("blog", "0014_hazard_remove_field"): {"remove-field"},
    ("blog", "0017_hazard_alter_db_column"): {"alter-db-column"},
    ("blog", "0018_hazard_delete_model"): {"remove-model"},
    ("blog", "0019_hazard_update_without_where"): {"update-without-where"},
    ("shop", "0002_hazard_add_index_non_concurrent"): {"add-index-non-concurrent"},
    ("shop", "0004_hazard_alter_field_db_index"): {"add-index-non-concurrent"},
    ("shop", "0005_hazard_remove_index"): {"drop-index-non-concurrent"},
    ("shop", "0010_hazard_add_check_constraint"): {"add-check-constraint-validating"},
    ("shop", "0013_hazard_add_unique_constraint"): {"add-unique-constraint"},
    ("shop", "0014_hazard_alter_field_unique"): {
        "add-unique-constraint",
        "add-index-non-concurrent",
    },
    ("shop", "0017_hazard_alter_column_type"): {"alter-column-type-rewrite"},
    ("shop", "0020_hazard_add_positive_integer_field"): {"add-column-check-scan"},
    ("shop", "0021_hazard_add_column_volatile_default"): {"add-column-volatile-default"},
    ("shop", "0022_hazard_remove_foreign_key"): {"remove-field"},
    ("shop", "0023_hazard_lock_table"): {"lock-table"},
    ("shop", "0025_hazard_run_sql_no_reverse"): {"run-sql-no-reverse"},
}

#: Locking findings the trace must confirm on the sample, with the mode it observes.
OBSERVED = {
    ("shop", "0002_hazard_add_index_non_concurrent"): "ShareLock",
    ("shop", "0017_hazard_alter_column_type"): "AccessExclusiveLock",
    ("shop", "0020_hazard_add_positive_integer_field"): "AccessExclusiveLock",
    ("shop", "0010_hazard_add_check_constraint"): "AccessExclusiveLock",
    ("blog", "0008_hazard_set_not_null"): "AccessExclusiveLock",
    ("blog", "0007_hazard_alter_unique_together"): "AccessExclusiveLock",
    ("accounts", "0013_hazard_add_foreign_key_validating"): "ShareRowExclusiveLock",
}


#: The analytics app lives in the second database (sample_project/routers.py).
SECOND_DATABASE = "analytics"
EXPECTED_ANALYTICS = {
    ("analytics", "0002_hazard_add_index_non_concurrent"): {"add-index-non-concurrent"},
}


@pytest.fixture(scope="module")
def audit(pg_url, tmp_path_factory):
    return _audit(pg_url, tmp_path_factory)


@pytest.fixture(scope="module")
def analytics_audit(pg_url, tmp_path_factory):
    return _audit(pg_url, tmp_path_factory, "--database", SECOND_DATABASE)


def _audit(pg_url, tmp_path_factory, *extra):
    out = tmp_path_factory.mktemp("sample") / "audit.json"
    env = {**os.environ, "MIGRATION_GUARD_DATABASE_URL": pg_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("GITHUB_ACTIONS", None)
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "migration_audit",
            "--all",
            "--no-color",
            "--format",
            "text",
            "--format",
            "json",
            "--output",
            "-",
            "--output",
            str(out),
            *extra,
        ],
        cwd=SAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, json.loads(out.read_text())


def _findings(report):
    return {
        (m["app_label"], m["name"]): {f["rule"] for f in m["findings"]}
        for m in report["migrations"]
    }


def test_exit_status_is_1_for_the_hazards(audit):
    result, _ = audit
    assert result.returncode == 1, result.stderr


def test_every_hazard_has_its_rule_and_no_safe_migration_is_flagged(audit):
    _, report = audit
    found = _findings(report)
    assert all(m["status"] == "audited" for m in report["migrations"])
    for (app, name), rules in found.items():
        if "hazard" in name and app != SECOND_DATABASE:
            assert rules == EXPECTED[(app, name)], (app, name)
        else:
            assert rules == set(), (app, name)
    assert set(EXPECTED) <= set(found)
    # the analytics app's migrations run on the other database: no-ops here, and said so
    assert any("--database analytics" in note for note in report["notes"])


def test_second_database_hazards_through_its_alias(analytics_audit):
    result, report = analytics_audit
    assert result.returncode == 1, result.stderr
    found = _findings(report)
    for (app, name), rules in found.items():
        if (app, name) in EXPECTED_ANALYTICS:
            assert rules == EXPECTED_ANALYTICS[(app, name)], (app, name)
        else:
            assert rules == set(), (app, name)  # the default database's apps are no-ops here
    assert set(EXPECTED_ANALYTICS) <= set(found)
    assert any("--database default" in note for note in report["notes"])


def test_locking_findings_are_observed(audit):
    _, report = audit
    for migration in report["migrations"]:
        key = (migration["app_label"], migration["name"])
        for finding in migration["findings"]:
            if finding["category"] == "locking":
                assert finding["evidence"] == "observed", (key, finding["rule"])
        if key in OBSERVED:
            modes = {lock["mode"] for f in migration["findings"] for lock in f["locks"]}
            assert OBSERVED[key] in modes, (key, modes)


def test_json_follows_the_schema(audit):
    _, report = audit
    jsonschema.validate(report, json.loads((REPO / "docs" / "report.schema.json").read_text()))


#: RemoveField's SQL: Django 4.2 and 5.2 (the golden file) end it with CASCADE, Django 6.0+
#: does not. Nothing else differs between them.
DROP_COLUMN = re.compile(r'ALTER TABLE "\w+" DROP COLUMN "\w+"( CASCADE)?')


def _as_django_5_sql(statement):
    match = DROP_COLUMN.fullmatch(statement)
    if match is None or django.VERSION < (6, 0):
        return statement
    assert match.group(1) is None, statement
    return f"{statement} CASCADE"


def _stable_json(report):
    report = json.loads(json.dumps(report))
    report["tool"]["version"] = "<version>"
    report["postgres"] = "<postgres>"
    report["notes"] = []
    for migration in report["migrations"]:
        migration["duration_ms"] = None
        for finding in migration["findings"]:
            finding["duration_ms"] = None
            finding["sql"] = [_as_django_5_sql(s) for s in finding["sql"]]
        for seen in migration["trace"]:
            seen["duration_ms"] = None
    return json.dumps(report, indent=2, sort_keys=True) + "\n"


def _stable_text(text):
    text = re.sub(r"on PostgreSQL [\d.]+ \(\w+\)", "on PostgreSQL <version> (<source>)", text)
    return "\n".join(line for line in text.splitlines() if not line.startswith("Note:")) + "\n"


def test_text_golden(audit):
    result, _ = audit
    assert_golden("sample_apps.all.txt", _stable_text(result.stdout))


def test_json_golden(audit):
    _, report = audit
    assert_golden("sample_apps.all.json", _stable_json(report))


def test_second_database_text_golden(analytics_audit):
    result, _ = analytics_audit
    assert_golden("sample_apps.analytics.txt", _stable_text(result.stdout))
