"""Where throwaway clusters live: a memory filesystem when one has room, else TMPDIR.

:func:`local.cluster_parent` picks the folder: ``MIGRATION_GUARD_CLUSTER_DIR``,
then TMPDIR when set, then /dev/shm when it is a tmpfs we (and the server's
account) may use with room to spare, then the temporary folder. Small tmpfs
mounts are real ones, in a private mount namespace of a child process
(``tests.reliability.small_filesystem``); the tests skip saying why where this
machine allows none, or has no usable /dev/shm.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_guard.postgres import local
from migration_guard.postgres.embedded import embedded_cluster

from .reliability import CREATE_ITEM, Project, project_fixture, small_filesystem
from .test_reliability_faults import SOURCE, needs_cluster

REPO = Path(__file__).resolve().parents[1]
MEGABYTE = 1024 * 1024
TEMP_VARIABLES = ("TMPDIR", "TEMP", "TMP", local.CLUSTER_DIR_VARIABLE)


@pytest.fixture
def no_tmpdir(monkeypatch) -> None:
    """The environment of a user who set neither TMPDIR nor the cluster folder."""
    for name in TEMP_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads them again


def memory_or_skip() -> None:
    why_not = local.memory_dir_unusable(local.MEMORY_DIR)
    if why_not:
        pytest.skip(f"no usable memory filesystem here: {why_not}")


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A private folder short enough for a socket path (pytest's tmp_path may not be)."""
    folder = Path(tempfile.mkdtemp(prefix="mg-", dir="/tmp"))
    folder.chmod(0o755)  # the server's account passes through, as root
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def shm_folder() -> Iterator[Path]:
    """A folder of ours on the memory filesystem, removed afterwards."""
    if not local.MEMORY_DIR.is_dir() or local._mount_type(local.MEMORY_DIR) != "tmpfs":
        pytest.skip(f"{local.MEMORY_DIR} is not a tmpfs here")
    folder = Path(tempfile.mkdtemp(prefix="mg-test-", dir=local.MEMORY_DIR))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- the choice ---------------------------------------------------------------------------


def test_without_tmpdir_the_cluster_goes_in_memory(no_tmpdir):
    memory_or_skip()
    parent = local.cluster_parent()
    assert parent.path == local.MEMORY_DIR
    assert parent.reason == "a memory filesystem"
    assert local.MEMORY_DIR in local.cluster_parents()
    assert Path(tempfile.gettempdir()) in local.cluster_parents()


def test_tmpdir_set_by_the_user_is_honoured(short_dir, monkeypatch, no_tmpdir):
    monkeypatch.setenv("TMPDIR", str(short_dir))
    parent = local.cluster_parent()
    assert (parent.path, parent.reason) == (short_dir, "TMPDIR")
    assert local.cluster_parents()[0] == short_dir


def test_a_tmpdir_too_long_for_a_socket_gives_tmp_and_says_why(tmp_path, monkeypatch, no_tmpdir):
    long = tmp_path / ("x" * 60)
    long.mkdir()
    monkeypatch.setenv("TMPDIR", str(long))
    parent = local.cluster_parent()
    assert (parent.path, parent.reason) == (Path("/tmp"), f"{long} is too long for a socket path")


def test_the_cluster_folder_variable_wins_over_tmpdir(short_dir, monkeypatch, no_tmpdir):
    (short_dir / "clusters").mkdir()
    monkeypatch.setenv("TMPDIR", str(short_dir))
    monkeypatch.setenv(local.CLUSTER_DIR_VARIABLE, str(short_dir / "clusters"))
    parent = local.cluster_parent()
    assert (parent.path, parent.reason) == (short_dir / "clusters", local.CLUSTER_DIR_VARIABLE)
    assert short_dir / "clusters" in local.cluster_parents()


def test_a_folder_on_disk_is_no_memory_filesystem(tmp_path):
    kind = local._mount_type(tmp_path)
    if kind == "tmpfs":
        pytest.skip(f"{tmp_path} is itself on a tmpfs here")
    assert local.memory_dir_unusable(tmp_path, floor=0) == f"{tmp_path} is not a tmpfs ({kind})"


def test_a_memory_folder_others_may_write_needs_the_sticky_bit(shm_folder):
    shm_folder.chmod(0o777)
    assert "writable by others and not sticky" in (
        local.memory_dir_unusable(shm_folder, floor=0) or ""
    )
    shm_folder.chmod(0o1777)  # like /tmp and /dev/shm
    assert local.memory_dir_unusable(shm_folder, floor=0) is None


def test_a_memory_folder_the_server_account_cannot_reach_is_refused(shm_folder):
    nobody = pwd.getpwnam("nobody")
    shm_folder.chmod(0o700)
    assert local.memory_dir_unusable(shm_folder, floor=0, run_as=nobody) == (
        f"nobody cannot reach {shm_folder}"
    )
    shm_folder.chmod(0o711)
    assert local.memory_dir_unusable(shm_folder, floor=0, run_as=nobody) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another account")
def test_a_memory_folder_of_another_account_is_refused(shm_folder):
    nobody = pwd.getpwnam("nobody")
    os.chown(shm_folder, nobody.pw_uid, nobody.pw_gid)
    assert local.memory_dir_unusable(shm_folder, floor=0) == (
        f"{shm_folder} belongs to uid {nobody.pw_uid}"
    )


_CHOOSE = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from migration_guard.postgres import local
    folder = Path(sys.argv[1])
    local.MEMORY_DIR = folder
    MB = 1024 * 1024
    print(json.dumps({
        "default": local.memory_dir_unusable(folder),
        "small_floor": local.memory_dir_unusable(folder, floor=16 * MB),
        "big_entry": local.memory_dir_unusable(folder, needed=30 * MB, floor=MB),
        "parent": str(local.cluster_parent().path),
        "parent_small_entry": str(local.cluster_parent(needed=MB).path),
        "free": local._free_bytes(folder),
    }))
    """
)


def test_a_memory_filesystem_without_room_is_passed_over(tmp_path, no_tmpdir):
    """Docker's default /dev/shm is 64 MB: the cluster goes in the temporary folder."""
    folder = tmp_path / "shm"
    folder.mkdir()
    prefix, reason = small_filesystem(folder, 64)
    if not prefix:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if k not in TEMP_VARIABLES}
    env["PYTHONPATH"] = str(REPO / "src")
    child = subprocess.run(
        [*prefix, sys.executable, "-c", _CHOOSE, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout)
    assert 60 * MEGABYTE < seen["free"] <= 64 * MEGABYTE  # the small tmpfs, not the disk
    floor = local.MEMORY_FLOOR // MEGABYTE
    assert (
        seen["default"] == f"{folder} has {seen['free'] // MEGABYTE} MB free, fewer than {floor} MB"
    )
    assert seen["small_floor"] is None
    # three times the restored entry's size: 90 MB do not fit in 64
    assert "fewer than 90 MB" in seen["big_entry"]
    temp = str(local._short(Path(tempfile.gettempdir())))
    assert seen["parent"] == seen["parent_small_entry"] == temp


# --- a cluster in memory --------------------------------------------------------------------


@needs_cluster
def test_a_cluster_in_memory_starts_restores_and_leaves_nothing(tmp_path, no_tmpdir):
    memory_or_skip()
    first = embedded_cluster() or local.local_cluster()
    assert first is not None
    with first:
        assert first.directory is not None
        folder = first.directory
        assert folder.parent == local.MEMORY_DIR
        assert local._mount_type(folder) == "tmpfs"
        assert first.parent.reason == "a memory filesystem"
        assert str(local.MEMORY_DIR) in first.no_space_advice()
        with first.info.connect(autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (id int)")
        first.save_data(tmp_path / "data")
    assert not folder.exists()
    # a second cluster restored from the saved data directory: its size counts
    second = local.LocalCluster(first.bindir, source=first.source, data_source=tmp_path / "data")
    with second:
        assert second.directory is not None and second.directory.parent == local.MEMORY_DIR
        with second.info.connect() as conn:
            assert conn.execute("SELECT to_regclass('kept') IS NOT NULL").fetchone() == (True,)
        folder = second.directory
    assert not folder.exists()
    assert local._saved_bytes(tmp_path / "data") > MEGABYTE


# --- the sweep ------------------------------------------------------------------------------


def test_the_sweep_visits_the_memory_filesystem_too(short_dir, monkeypatch, no_tmpdir):
    """TMPDIR is where this run would put its cluster; a killed earlier run without it
    left its folder in /dev/shm. The sweep removes both, with the same proofs."""
    if not local.MEMORY_DIR.is_dir():
        pytest.skip(f"no {local.MEMORY_DIR} here")
    monkeypatch.setenv("TMPDIR", str(short_dir))
    dead = dead_pid()
    stale_here = short_dir / f"{local.TEMP_PREFIX}stale-test"
    stale_memory = Path(tempfile.mkdtemp(prefix=local.TEMP_PREFIX, dir=local.MEMORY_DIR))
    elsewhere = Path(tempfile.mkdtemp(prefix=local.TEMP_PREFIX, dir=local.MEMORY_DIR))
    try:
        stale_here.mkdir(mode=0o700)
        for folder in (stale_here, stale_memory):
            (folder / "c").mkdir()
            (folder / "owner.pid").write_text(f"{dead} {local._pid_namespace()}\n")
        # a folder whose owner lives in another pid namespace (a container sharing
        # /dev/shm): its pid means nothing here, so it is left alone
        (elsewhere / "owner.pid").write_text(f"{dead} pid:[1]\n")
        removed = local.sweep_stale_dirs()
        assert stale_here in removed and stale_memory in removed
        assert elsewhere not in removed
        assert not stale_here.exists() and not stale_memory.exists() and elsewhere.is_dir()
    finally:
        for folder in (stale_memory, elsewhere):
            shutil.rmtree(folder, ignore_errors=True)


def test_a_running_cluster_records_its_pid_namespace(short_dir, monkeypatch, no_tmpdir):
    monkeypatch.setenv("TMPDIR", str(short_dir))
    cluster = embedded_cluster() or local.local_cluster()
    if cluster is None:
        pytest.skip("no PostgreSQL binaries and no embedded wheel: no throwaway cluster")
    with cluster:
        assert cluster.directory is not None and cluster.directory.parent == short_dir
        owner = (cluster.directory / "owner.pid").read_text().split()
        assert owner == [str(os.getpid()), local._pid_namespace()]
        assert local.sweep_stale_dirs() == []  # alive: not swept
        assert cluster.directory.is_dir()


# --- no room: the message names the folder and the way out ----------------------------------


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


@needs_cluster
def test_no_room_in_the_chosen_cluster_folder_names_it(project, short_dir):
    folder = short_dir / "clusters"
    folder.mkdir()
    prefix, reason = small_filesystem(folder, 8)
    if not prefix:
        pytest.skip(reason)
    project.migration("0001_initial", [CREATE_ITEM])
    assert SOURCE is not None
    result = project.run(
        "inv",
        "0001",
        "--postgres",
        SOURCE,
        prefix=prefix,
        **{local.CLUSTER_DIR_VARIABLE: str(folder)},
    )
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert "No space left on device" in result.stderr
    assert f"live in a folder under {folder} ({local.CLUSTER_DIR_VARIABLE})" in result.stderr
    assert f"point {local.CLUSTER_DIR_VARIABLE} (or TMPDIR) at a folder" in result.stderr
    assert list(project.tmpdir.iterdir()) == []  # the override won over TMPDIR
    assert list(folder.iterdir()) == []
