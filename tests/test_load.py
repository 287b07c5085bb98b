"""Load case: a 1,000-migration history with a change of 50 migrations audits to the end.

The project comes from ``benchmarks/genproject.py`` (50 apps of 20 migrations,
the last app depending on every other, so the change needs the whole history:
950 migrations of base state, then 50 recorded and traced). The last commit of
its git repository adds the change, selected with ``--since HEAD~1``.

The audits run as ``manage.py`` subprocesses on the session's server through
``--database-url``: no cluster to start per run, and no base-state cache (it
exists for throwaway clusters only), so every run really applies the 950
migrations; it also runs unchanged when the suite uses an external server
(MIGRATION_GUARD_DATABASE_URL, e.g. PostgreSQL 13 to 18 from
docker-compose.test.yml). Each run works in its own scratch database, so the
three runs below go concurrently: one checks the report, memory and progress,
the others that progress stays off stderr with ``-v 0`` and with JSON on
stdout. Each of them applies the base for well over the 3 s after which the
command starts printing progress, so the absence is meaningful.

The history is lighter than the benchmark's (at most 2 operations per
migration, fewer foreign keys): applying a migration costs Django mostly the
re-rendering of the models related to the altered one, and this test is about
length and memory, not about Django's rendering speed (benchmarks/run.py
measures that).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import pytest

from benchmarks.genproject import GeneratedProject, generate
from benchmarks.measure import Measurement, run_measured

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())

APPS = 50
PER_APP = 20
CHANGE = 50
#: A generous bound: the audit of this project peaks near 100 MB.
MAX_PEAK_RSS = int(1.5 * 2**30)
PROGRESS = re.compile(rf"^\[\d+/{CHANGE}\] app\d+\.\d{{4}}", re.MULTILINE)

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_GUARD_")}
    env["DJANGO_SETTINGS_MODULE"] = "project.settings"  # pytest-django set tests.settings
    env.pop("GITHUB_ACTIONS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclasses.dataclass(frozen=True)
class Load:
    project: GeneratedProject
    report: Path
    runs: dict[str, Measurement]


@pytest.fixture(scope="module")
def load(tmp_path_factory, pg_url) -> Load:
    root = tmp_path_factory.mktemp("load")
    project = generate(
        root / "project",
        apps=APPS,
        migrations=PER_APP,
        seed=7,
        change=CHANGE,
        hazards=3,
        hazard_apps=3,
        max_ops=2,
        relations=0.3,
        git=True,
    )
    assert len(project.migrations) == APPS * PER_APP
    assert project.base >= APPS * PER_APP - CHANGE
    audit = [
        sys.executable,
        "manage.py",
        "migration_audit",
        "--since",
        "HEAD~1",
        "--database-url",
        pg_url,
        "--no-color",
    ]
    report = root / "report.json"
    commands = {
        # JSON to a file and text to stdout, -v 1: progress on stderr
        "report": [*audit, "--format", "json", "--output", str(report), "--format", "text"],
        "quiet": [*audit, "-v", "0"],
        "json-stdout": [*audit, "--format", "json", "-v", "1"],
    }
    env = _env()

    def run(item: tuple[str, list[str]]) -> tuple[str, Measurement]:
        name, argv = item
        return name, run_measured(argv, cwd=project.root, env=env, timeout=600)

    with ThreadPoolExecutor(len(commands)) as pool:
        runs = dict(pool.map(run, commands.items()))
    return Load(project, report, runs)


def test_a_1000_migration_history_audits_to_the_end_in_bounded_memory(load, record_property):
    measured, project = load.runs["report"], load.project
    assert measured.returncode in (0, 1), measured.stderr[-4000:]
    assert "Traceback" not in measured.stderr
    report = json.loads(load.report.read_text())
    jsonschema.validate(report, SCHEMA)
    audited = [(m["app_label"], m["name"]) for m in report["migrations"]]
    assert audited == list(project.change)
    assert {m["status"] for m in report["migrations"]} == {"audited"}, [
        (m["name"], m["status"], m.get("error")) for m in report["migrations"]
    ]
    # the hazards of the app whose tables predate the change are found
    findings = {
        (m["app_label"], m["name"]): m["findings"]
        for m in report["migrations"]
        if (m["app_label"], m["name"]) in project.hazards
    }
    assert any(findings.values()), findings
    assert measured.returncode == 1
    peak = measured.peak_rss if measured.peak_rss is not None else measured.tree_max_rss
    record_property("wall_seconds", round(measured.wall, 1))
    record_property("peak_rss_mb", round(peak / 2**20, 1))
    print(
        f"\n1,000 migrations, change of {CHANGE}: {measured.wall:.1f} s wall, "
        f"{measured.cpu:.1f} s CPU, peak RSS {peak / 2**20:.0f} MB"
    )
    assert peak < MAX_PEAK_RSS


def test_progress_goes_to_stderr_on_a_long_run(load):
    measured = load.runs["report"]
    assert PROGRESS.search(measured.stderr), measured.stderr[-2000:]
    assert not PROGRESS.search(measured.stdout)
    assert f"Audited {CHANGE} migration(s)" in measured.stdout  # the text report


def test_no_progress_with_verbosity_0(load):
    measured = load.runs["quiet"]
    assert measured.returncode in (0, 1), measured.stderr[-4000:]
    assert not PROGRESS.search(measured.stderr), measured.stderr[-2000:]
    assert measured.stderr.strip() == ""


def test_no_progress_with_json_on_stdout(load):
    measured = load.runs["json-stdout"]
    assert measured.returncode in (0, 1), measured.stderr[-4000:]
    assert not PROGRESS.search(measured.stderr), measured.stderr[-2000:]
    report = json.loads(measured.stdout)
    assert len(report["migrations"]) == CHANGE
