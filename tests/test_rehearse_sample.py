"""``migration_audit --all --rehearse`` on sample_apps: what the previous release suffers.

Every compatibility hazard makes the previous release's queries fail, with
PostgreSQL's error, and its rule's finding becomes ``observed``; no safe
counterpart makes any query fail. Every locking hazard's measured waits go
with the operation that scanned or rewrote the table and last no longer than
its lock; no safe counterpart makes a query wait past the threshold. Golden
files of the text and Markdown output (timings and counts masked: they vary
from run to run; which tables, kinds and errors do not).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import jsonschema
import pytest

from .goldens import assert_golden
from .test_sample_apps import EXPECTED, REPO, SAMPLE, SECOND_DATABASE

#: Compatibility hazards -> (rule, the table, a piece of PostgreSQL's error they cause).
BREAKING = {
    ("accounts", "0002_hazard_not_null_without_db_default"): (
        "not-null-without-db-default",
        "accounts_user",
        'null value in column "login_count"',
    ),
    ("accounts", "0006_hazard_rename_field"): (
        "rename-field",
        "accounts_profile",
        "accounts_profile.bio does not exist",
    ),
    ("accounts", "0008_hazard_rename_model"): (
        "rename-model",
        "accounts_invitation",
        'relation "accounts_invitation" does not exist',
    ),
    ("accounts", "0009_hazard_alter_db_table"): (
        "alter-db-table",
        "accounts_profile",
        'relation "accounts_profile" does not exist',
    ),
    ("blog", "0014_hazard_remove_field"): (
        "remove-field",
        "blog_post",
        "blog_post.legacy_html does not exist",
    ),
    ("blog", "0017_hazard_alter_db_column"): (
        "alter-db-column",
        "blog_comment",
        "blog_comment.body does not exist",
    ),
    ("blog", "0018_hazard_delete_model"): (
        "remove-model",
        "blog_pageview",
        'relation "blog_pageview" does not exist',
    ),
    ("shop", "0022_hazard_remove_foreign_key"): (
        "remove-field",
        "shop_order",
        "shop_order.placed_by_id does not exist",
    ),
}


@pytest.fixture(scope="module")
def rehearsed(pg_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rehearse")
    env = {**os.environ, "MIGRATION_GUARD_DATABASE_URL": pg_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("GITHUB_ACTIONS", None)
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "migration_audit",
            "--all",
            "--rehearse",
            "--no-color",
            "--format",
            "text",
            "--format",
            "json",
            "--format",
            "markdown",
            "--output",
            "-",
            "--output",
            str(folder / "audit.json"),
            "--output",
            str(folder / "audit.md"),
        ],
        cwd=SAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    report = json.loads((folder / "audit.json").read_text())
    return result, report, (folder / "audit.md").read_text()


def _migrations(report):
    return {(m["app_label"], m["name"]): m for m in report["migrations"]}


def test_exit_status_and_every_migration_applies(rehearsed):
    result, report, _ = rehearsed
    assert result.returncode == 1, result.stderr
    assert all(m["status"] == "audited" for m in report["migrations"])


def test_the_rules_found_are_the_plain_audits(rehearsed):
    """The rehearsal confirms the hazards; on sample_apps nothing is left unpredicted."""
    _, report, _ = rehearsed
    for key, migration in _migrations(report).items():
        rules = {f["rule"] for f in migration["findings"]}
        if "hazard" in key[1] and key[0] != SECOND_DATABASE:
            assert rules == EXPECTED[key], key
        else:
            assert rules == set(), key


def test_every_compatibility_hazard_fails_the_previous_release(rehearsed):
    _, report, _ = rehearsed
    migrations = _migrations(report)
    for key, (rule, table, error) in BREAKING.items():
        (finding,) = [f for f in migrations[key]["findings"] if f["rule"] == rule]
        assert finding["evidence"] == "observed", key
        (traffic,) = [t for t in finding["traffic"] if t["table"] == table]
        assert traffic["failed"] >= 1, key
        errors = [e["error"] for k in traffic["kinds"] for e in k["errors"]]
        assert any(error in e for e in errors), (key, errors)
        assert traffic["operation"]["index"] == finding["operation"]["index"], key


def test_no_other_migration_makes_a_query_fail(rehearsed):
    _, report, _ = rehearsed
    for key, migration in _migrations(report).items():
        if key in BREAKING or migration.get("rehearsal") is None:
            continue
        failed = {t["table"]: t["failed"] for t in migration["rehearsal"]["tables"]}
        assert not any(failed.values()), (key, failed, migration["rehearsal"]["notes"])


def test_every_locking_hazard_measures_waits_that_go_with_its_work(rehearsed):
    _, report, _ = rehearsed
    checked = 0
    for key, migration in _migrations(report).items():
        for finding in migration["findings"]:
            if finding["category"] != "locking" or not (finding["scans"] or finding["rewrites"]):
                continue
            # the measurement of the table the work was done on, attributed to that operation
            worked = {s["relation"] for s in finding["scans"]} | {
                r["table"] for r in finding["rewrites"]
            }
            measured = [t for t in finding["traffic"] if t["table"] in worked]
            assert measured, key
            # the operation whose lock the queries met: the finding's own, or the one that
            # took the lock it worked under (run-python-with-ddl: the AddField before it)
            takers = {finding["operation"]["index"]} | {
                int(n)
                for lock in finding["locks"]
                for n in re.findall(r"operations\[(\d+)\]", lock["taken_by"] or "")
            }
            for traffic in measured:
                assert traffic["queries"] >= 5, key  # each kind at least once after it
                assert traffic["operation"]["index"] in takers, key
                # nobody waits on a lock for longer than the migration held it
                assert traffic["longest_wait_ms"] <= migration["duration_ms"] + 1000, key
            checked += 1
    assert checked >= 12


def test_no_safe_counterpart_makes_a_query_wait_past_the_threshold(rehearsed):
    _, report, _ = rehearsed
    for key, migration in _migrations(report).items():
        if "hazard" in key[1] or migration.get("rehearsal") is None:
            continue
        for traffic in migration["rehearsal"]["tables"]:
            assert traffic["over_threshold"] == 0, (key, traffic["table"])
            assert traffic["longest_wait_ms"] < traffic["threshold_ms"], key


def test_the_rehearsal_says_what_it_cost(rehearsed):
    _, report, _ = rehearsed
    summary = report["rehearsal"]
    assert summary["migrations"] >= 45 and summary["queries"] > summary["migrations"] * 5
    assert summary["seconds"] >= summary["seed_seconds"] > 0
    assert any("the rehearsal cost" in note for note in report["notes"])


def test_json_follows_the_schema(rehearsed):
    _, report, _ = rehearsed
    jsonschema.validate(report, json.loads((REPO / "docs" / "report.schema.json").read_text()))


# --- golden files ----------------------------------------------------------------------------

_TIME = re.compile(r"\d+\.\d+ s\b")
_COUNTS = re.compile(r"\b\d+ of \d+\b")


def _mask(text: str) -> str:
    """Timings and counts vary between runs; what failed, where and how does not."""
    text = _TIME.sub("<t> s", text)
    text = _COUNTS.sub("<n> of <m>", text)
    text = re.sub(r"\b[\d,]+ queries\b", "<n> queries", text)
    text = re.sub(r"\b(none|\d+) over\b", "<n> over", text)
    return re.sub(r"; \d+ gave up waiting", "", text)


def stable_text(text: str) -> str:
    text = re.sub(r"on PostgreSQL [\d.]+ \(\w+\)", "on PostgreSQL <version> (<source>)", text)
    lines = [line for line in text.splitlines() if not line.startswith("Note:")]
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if re.match(r" {10}(waits|fails) ", line):
            # one line per measurement: masked numbers of another width would wrap elsewhere
            while index + 1 < len(lines) and lines[index + 1].startswith(" " * 16):
                index += 1
                line += " " + lines[index].strip()
            line = _mask(line)
        out.append(line)
        index += 1
    return "\n".join(out) + "\n"


def stable_markdown(text: str) -> str:
    text = re.sub(r"PostgreSQL [\d.]+ \\?\(\w+\\?\)", "PostgreSQL <version>", text)
    text = re.sub(r"guard [\w.\\+-]+ ·", "guard <version> ·", text)
    lines = []
    for line in text.splitlines():
        if line.startswith("> **Note:**"):
            continue  # the run's notes: cache, timings
        if line.startswith("| ") and line.rstrip().endswith("| none |"):
            continue  # a table that waited past the threshold without failing: load decides
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text = re.sub(r"on \d+ tables?", "on <n> tables", text)
    return re.sub(r"\n{3,}", "\n\n", _mask(text))


def test_text_golden(rehearsed):
    result, _, _ = rehearsed
    assert_golden("sample_apps.rehearse.txt", stable_text(result.stdout))


def test_markdown_golden(rehearsed):
    _, _, markdown = rehearsed
    assert_golden("sample_apps.rehearse.md", stable_markdown(markdown))
