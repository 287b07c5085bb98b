"""``manage.py migration_audit`` as a user runs it: exit status, formats, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "sample_apps"
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def manage(*args, url=None, env=None, cwd=SAMPLE):
    environ = {**os.environ, **(env or {})}
    environ.pop("MIGRATION_GUARD_DATABASE_URL", None)
    if url:
        environ["MIGRATION_GUARD_DATABASE_URL"] = url
    environ.pop("GITHUB_ACTIONS", None)
    environ.pop("DJANGO_SETTINGS_MODULE", None)  # pytest-django sets it for this process
    return subprocess.run(
        [sys.executable, "manage.py", "migration_audit", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_safe_migration_exits_0(pg_url):
    result = manage("shop", "0003", "--no-color", url=pg_url)
    assert result.returncode == 0, result.stderr
    assert "shop.0003_safe_add_index_concurrently" in result.stdout
    assert "Nothing at or above --fail-on error" in result.stdout


def test_hazard_exits_1(pg_url):
    result = manage("shop", "0017", "--no-color", url=pg_url)
    assert result.returncode == 1, result.stderr
    assert "exit status 1" in result.stdout


def test_unknown_app_exits_2_with_a_suggestion(pg_url):
    result = manage("shopp", url=pg_url)
    assert result.returncode == 2
    assert "no installed app with label 'shopp'" in result.stderr
    assert "Did you mean shop" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_database_url_exits_2_without_the_password():
    result = manage("shop", "0003", "--database-url", "postgresql://me:hunter2@127.0.0.1:1/x")
    assert result.returncode == 2
    assert "hunter2" not in result.stderr + result.stdout
    assert "cannot connect" in result.stderr


def test_json_to_a_file_follows_the_schema(pg_url, tmp_path):
    out = tmp_path / "audit.json"
    result = manage("shop", "0017", "--format", "json", "--output", str(out), url=pg_url)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    report = json.loads(out.read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["summary"]["errors"] >= 1
    assert (
        report["migrations"][0]["path"]
        == "sample_apps/shop/migrations/0017_hazard_alter_column_type.py"
    )


def test_several_formats_from_one_audit(pg_url, tmp_path):
    out = tmp_path / "audit.json"
    result = manage(
        "shop", "0003", "--format", "json", "--output", str(out), "--format", "text", url=pg_url
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["summary"]["migrations"] == 1
    assert "Change: shop.0003" in result.stdout


def test_two_formats_to_stdout_are_refused(pg_url):
    result = manage("shop", "0003", "--format", "json", "--format", "text", url=pg_url)
    assert result.returncode == 2
    assert "give each but one an --output FILE" in result.stderr


def test_fail_on_warning(pg_url):
    # shop 0025: RunSQL without reverse is a warning only
    ok = manage("shop", "0025", "--no-color", url=pg_url)
    strict = manage("shop", "0025", "--no-color", "--fail-on", "warning", url=pg_url)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert strict.returncode == 1


def test_the_project_databases_are_never_needed(pg_url):
    # sample_apps' DATABASES point at a server that does not exist: the audit never connects
    result = manage(
        "shop", "0003", url=pg_url, env={"DATABASE_URL": "postgresql://nobody:pw@127.0.0.1:1/none"}
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("flag", ["--no-color", "-v", "--settings"])
def test_django_conventions_are_accepted(pg_url, flag):
    extra = {"-v": ["-v", "0"], "--settings": ["--settings", "sample_project.settings"]}.get(
        flag, [flag]
    )
    result = manage("shop", "0003", *extra, url=pg_url)
    assert result.returncode == 0, result.stderr
    if flag == "-v":
        assert result.stderr == ""
