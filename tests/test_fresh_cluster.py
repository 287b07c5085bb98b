"""A fresh cluster saved after initdb: later audits start from it instead of running initdb.

initdb is most of a throwaway cluster's start (about 0.9 s of a cold audit on
these machines). The cache keeps the data directory initdb made, keyed by the
binaries and initdb's options; a cluster started from it has to be the cluster
initdb makes, and a damaged one must cost nothing but the time to rebuild it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from migration_guard.cache import DATA, BaseStateCache
from migration_guard.postgres import local
from migration_guard.postgres.embedded import embedded_cluster

from .reliability import (
    CREATE_ITEM,
    Project,
    entry_members,
    overwrite_member,
    postgres_processes_under,
    project_fixture,
)
from .test_reliability_faults import SOURCE, needs_cluster

#: Settings that name the cluster's own folder: they differ between any two clusters.
PATHS = {"config_file", "data_directory", "hba_file", "ident_file", "unix_socket_directories"}


def described(cluster: Any) -> dict[str, Any]:
    """What a migration could notice of the cluster: settings (and where each came
    from), databases, roles, and the catalog's size."""
    with cluster.info.connect() as conn:
        rows = conn.execute("SELECT name, setting, source FROM pg_settings").fetchall()
        settings = {name: setting for name, setting, _ in rows if name not in PATHS}
        from_file = sorted(name for name, _, source in rows if source == "configuration file")
        databases = conn.execute(
            "SELECT datname, encoding, datcollate, datctype, datistemplate "
            "FROM pg_database ORDER BY datname"
        ).fetchall()
        roles = conn.execute("SELECT rolname, rolsuper FROM pg_roles ORDER BY rolname").fetchall()
        relations = conn.execute("SELECT count(*) FROM pg_class").fetchone()
    return {
        "settings": settings,
        "databases": databases,
        "roles": roles,
        "pg_class": relations,
        "from_file": from_file,
    }


@needs_cluster
def test_a_cluster_started_from_a_saved_initdb_is_the_cluster_initdb_makes(tmp_path):
    saved = tmp_path / "fresh"
    first = embedded_cluster() or local.local_cluster()
    assert first is not None
    first.after_initdb = lambda save: save(saved)
    with first:
        made = described(first)
    names = entry_members(saved)
    assert "data/PG_VERSION" in names
    assert "data/postgresql.conf" not in names  # configuration never crosses
    second = local.LocalCluster(first.bindir, source=first.source, data_source=saved)

    def no_initdb(data: Path) -> None:
        raise AssertionError("initdb ran for a cluster started from a saved one")

    second._initdb = no_initdb  # type: ignore[method-assign]
    with second:
        restored = described(second)
    assert restored["from_file"] == []  # our configuration file is empty
    restored.pop("from_file")
    # what initdb wrote into its file is what the command line gives
    assert set(made.pop("from_file")) <= {"shared_buffers", "autovacuum_worker_slots"}
    assert restored == made
    assert made["settings"]["default_text_search_config"] == "pg_catalog.english"


# --- through the command -------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def findings(path: Path) -> list[tuple[str, str, str, str]]:
    """What the report says, without timings."""
    report = json.loads(path.read_text())
    return sorted(
        (m["name"], f["rule"], f["severity"], json.dumps(f["locks"], sort_keys=True))
        for m in report["migrations"]
        for f in m["findings"]
    )


def index_project(project: Project) -> tuple[str, ...]:
    """A table and an index built without CONCURRENTLY on it; the audit's arguments
    (a JSON report to the file that follows them)."""
    assert SOURCE is not None
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_index",
        ["migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"],
    )
    return ("--postgres", SOURCE, "--format", "json", "--output")


@needs_cluster
def test_audits_after_the_first_start_from_its_fresh_cluster_and_report_the_same(project):
    src = index_project(project)

    first = project.run("--all", *src, str(project.root / "first.json"), "-v", "2")
    assert first.returncode == 1, first.output
    assert "fresh cluster restored" not in first.stderr
    [fresh] = project.fresh_entries()

    # --all has no base state: a second one starts from the fresh cluster, not initdb
    second = project.run("--all", *src, str(project.root / "second.json"), "-v", "2")
    assert second.returncode == 1, second.output
    assert "fresh cluster restored" in second.stderr
    assert project.fresh_entries() == [fresh]
    uncached = project.run("--all", "--no-cache", *src, str(project.root / "none.json"))
    assert uncached.returncode == 1, uncached.output
    expected = findings(project.root / "none.json")
    assert expected, "the index without CONCURRENTLY is a finding"
    assert findings(project.root / "first.json") == expected
    assert findings(project.root / "second.json") == expected
    assert project.leftover_folders() == []


@needs_cluster
def test_a_damaged_fresh_cluster_is_rebuilt_and_the_audit_goes_on(project):
    src = index_project(project)
    assert project.run("--all", *src, str(project.root / "a.json")).returncode == 1
    [fresh] = project.fresh_entries()
    _, size = entry_members(fresh / DATA)["data/global/pg_control"]
    overwrite_member(fresh / DATA, "data/global/pg_control", bytes(size))  # the manifest matches
    assert BaseStateCache(project.cache).lookup(fresh.name) is not None

    result = project.run("--all", *src, str(project.root / "b.json"), "-v", "2")
    assert result.returncode == 1, result.output
    assert "Traceback" not in result.output
    assert findings(project.root / "b.json") == findings(project.root / "a.json")
    # removed when the server would not start from it, and no other saved in this run
    assert project.fresh_entries() == []
    third = project.run("--all", *src, str(project.root / "c.json"))
    assert third.returncode == 1, third.output
    [rebuilt] = project.fresh_entries()
    offset, size = entry_members(rebuilt / DATA)["data/global/pg_control"]
    with open(rebuilt / DATA, "rb") as handle:
        handle.seek(offset)
        assert handle.read(size) != bytes(size)
    assert project.leftover_folders() == []
    assert postgres_processes_under(project.tmpdir) == []
