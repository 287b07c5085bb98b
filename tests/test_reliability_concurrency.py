"""Audits at the same time, and a base-state cache that is damaged or half written.

* Two audits at once on one machine, sharing one cache folder and TMPDIR
  (throwaway clusters), and two at once on one shared ``--database-url`` server:
  each report is right, nothing is left behind.
* A cache entry with a file deleted, a file truncated, or no manifest is
  detected and rebuilt, and the report is the same as from a clean run; a
  writer killed while it copies leaves a half-written folder that is never used.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from migration_guard.cache import DATA, MANIFEST, BaseStateCache

from .reliability import (
    CREATE_ITEM,
    Project,
    Result,
    postgres_processes_under,
    project_fixture,
    scratch_databases,
    wait_until,
)
from .test_reliability_faults import SOURCE, needs_cluster

ADD_INDEX = "migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"
RESTORED = "restored from the cache"


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def write(project: Project, base_rows: int = 0) -> None:
    ops = [CREATE_ITEM]
    if base_rows:  # a bigger base state: copying it into the cache takes a while
        ops.append(
            'migrations.RunSQL("INSERT INTO inv_item (code) SELECT g::text FROM '
            f'generate_series(1, {base_rows}) g", migrations.RunSQL.noop)'
        )
    project.migration("0001_initial", ops)
    project.migration("0002_index", [ADD_INDEX])


def findings(path: Path) -> list[tuple[str, str, str]]:
    report = json.loads(path.read_text())
    return sorted(
        (m["name"], f["rule"], f["severity"]) for m in report["migrations"] for f in m["findings"]
    )


EXPECTED = [
    ("0002_index", "add-index-non-concurrent", "error"),
    ("0002_index", "lock-timeout-missing", "warning"),
]


def audit(project: Project, out: Path, *args: str) -> Result:
    return project.run("inv", "0002", "--format", "json", "--output", str(out), *args)


def notes(path: Path) -> list[str]:
    return list(json.loads(path.read_text())["notes"])


def entries(project: Project) -> list[Path]:
    return project.base_entries()


@needs_cluster
def test_two_audits_at_once_on_one_machine_share_a_cache(project):
    write(project)
    assert SOURCE is not None
    outs = [project.root / f"report{i}.json" for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda out: audit(project, out, "--postgres", SOURCE), outs))
    for result, out in zip(results, outs, strict=True):
        assert result.returncode == 1, result.output
        assert "Traceback" not in result.output
        assert findings(out) == EXPECTED
    [entry] = entries(project)  # both built the same base: one entry kept, and it is whole
    assert BaseStateCache(project.cache).lookup(entry.name) is not None
    assert [p for p in project.cache.iterdir() if p.name.startswith(".")] == []
    assert project.leftover_folders() == []
    assert postgres_processes_under(project.tmpdir) == []


def test_two_audits_at_once_on_one_shared_server(project, pg_server, pg_url):
    write(project)
    outs = [project.root / f"report{i}.json" for i in range(2)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda out: audit(project, out, "--database-url", pg_url), outs))
    for result, out in zip(results, outs, strict=True):
        assert result.returncode == 1, result.output
        assert findings(out) == EXPECTED
        assert scratch_databases(pg_server.info, result.pid) == []


def _damage_a_file(entry: Path, how: str) -> None:
    """Damage the entry's archive: delete it, or cut it in half."""
    archive = entry / DATA
    if how == "delete":
        archive.unlink()
    else:
        with open(archive, "r+b") as handle:
            handle.truncate(archive.stat().st_size // 2)


@needs_cluster
def test_damaged_and_half_written_cache_entries_are_rebuilt(project):
    write(project, base_rows=100_000)
    assert SOURCE is not None
    args = ("--postgres", SOURCE)

    # a writer killed while it copies the base state into the cache
    child = project.start("inv", "0002", *args)
    try:
        # the fresh cluster is saved first, right after initdb; then the base state
        assert wait_until(
            lambda: (
                child.poll() is None and project.fresh_entries() != [] and project.temporaries()
            ),
            timeout=120,
            interval=0.005,
        ), child.communicate()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    [half] = project.temporaries()
    assert entries(project) == []  # killed before its entry was renamed into place
    half_written = {p.relative_to(half) for p in half.rglob("*")}

    def run(label: str) -> list[str]:
        out = project.root / f"{label}.json"
        result = audit(project, out, *args)
        assert result.returncode == 1, f"{label}: {result.output}"
        assert "Traceback" not in result.output, label
        assert findings(out) == EXPECTED, label
        return notes(out)

    assert not any(RESTORED in n for n in run("after-kill"))  # the half entry was not used
    assert {p.relative_to(half) for p in half.rglob("*")} <= half_written  # nor completed
    cache = BaseStateCache(project.cache)

    for damage in ("delete", "truncate", "manifest"):
        [entry] = entries(project)
        assert cache.lookup(entry.name) is not None, damage  # whole before the damage
        if damage == "manifest":
            (entry / MANIFEST).unlink()
        else:
            _damage_a_file(entry, damage)
        assert not any(RESTORED in n for n in run(damage)), damage  # detected: rebuilt
    [entry] = entries(project)
    assert cache.lookup(entry.name) is not None
    assert any(RESTORED in n for n in run("warm"))

    assert project.leftover_folders() == []  # the killed run's folder was swept
    assert postgres_processes_under(project.tmpdir) == []
