"""Containment of the throwaway cluster: the attacks of issue 11, performed for real.

The audited migrations' SQL runs on the throwaway server as the server's
account (``COPY ... TO PROGRAM`` runs a shell command as that account). These
tests play that account, another local account (``nobody``) and a merge
request pipeline that writes the shared cache, and check that each attack now
fails: nothing written where it should not be, no process signalled or left
running, the audit reporting normally.

They need root (to act as other accounts through ``setpriv``) and skip, saying
so, without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_guard.cache import DATA, BaseStateCache
from migration_guard.postgres import account
from migration_guard.postgres import local as local_source
from migration_guard.postgres.embedded import embedded_cluster

from .reliability import (
    CREATE_ITEM,
    Project,
    plant_member,
    postgres_processes_under,
    project_fixture,
    wait_until,
)
from .test_reliability_faults import SOURCE, needs_cluster

as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="acting as another account (setpriv) needs root"
)
RESTORED = "restored from the cache"
INDEX = "migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"


def program(command: str) -> str:
    """A RunSQL that runs ``command`` through the server (as the server's account)."""
    # the program reads its input first: one that exits before COPY has written its row
    # makes the COPY fail (broken pipe)
    quoted = f"cat >/dev/null; {command}".replace("'", "''")
    return (
        f"migrations.RunSQL({f'COPY (SELECT 1) TO PROGRAM {chr(39)}{quoted}{chr(39)}'!r}, "
        "migrations.RunSQL.noop)"
    )


def setpriv(user: str) -> list[str]:
    entry = pwd.getpwnam(user)
    return [
        "setpriv",
        f"--reuid={entry.pw_uid}",
        f"--regid={entry.pw_gid}",
        "--clear-groups",
        "--",
    ]


def as_user(user: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*setpriv(user), "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every path under ``folder`` with its mode, owner, group and content."""
    out = {}
    for path in [folder, *folder.rglob("*")]:
        st = os.lstat(path)
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_uid, st.st_gid, content)
    return out


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


@pytest.fixture
def victim(tmp_path) -> Iterator[Path]:
    """A root-only folder with a root-only file: nothing may change in it."""
    folder = Path(tempfile.mkdtemp(prefix="mg-victim-", dir="/tmp"))
    folder.chmod(0o755)
    (folder / "secret.conf").write_text("root's own\n")
    (folder / "secret.conf").chmod(0o600)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def drop_box() -> Iterator[Path]:
    """A folder any account can write: where an attack that works leaves its proof."""
    folder = Path(tempfile.mkdtemp(prefix="mg-dropbox-", dir="/tmp"))
    folder.chmod(0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def findings_of(path: Path) -> list[tuple[str, str]]:
    data = json.loads(path.read_text())
    return sorted((f["rule"], m["name"]) for m in data["migrations"] for f in m["findings"])


def notes_of(path: Path) -> list[str]:
    return list(json.loads(path.read_text())["notes"])


# --- item 1: root follows links the server's account plants --------------------------------


@as_root
@needs_cluster
def test_links_planted_by_the_server_account_are_never_followed_by_root(project, victim):
    """The base migration plants links where root used to open and copy by path (the log,
    the owner file, the data directory's parent), and writes attacker text into the
    server log; the cache save and the relaunch that follow must not touch the victim."""
    target = victim / "secret.conf"
    plant = (
        f"for f in ../postgres.log ../../postgres.log ../../owner.pid ../../server.pid; do "
        f"ln -sf {target} $f; done; ln -s {victim} ../../pg 2>/dev/null; true"
    )
    project.migration(
        "0001_initial",
        [
            CREATE_ITEM,
            program(plant),
            "migrations.RunSQL(\"DO $$ BEGIN RAISE WARNING 'INJECTED-BY-MIGRATION'; END $$\", "
            "migrations.RunSQL.noop)",
        ],
    )
    project.migration("0002_index", [INDEX])
    before = snapshot(victim)
    out = project.root / "report.json"
    result = project.run(
        "inv", "0002", "--postgres", SOURCE, "--format", "json", "--output", str(out), "-v", "2"
    )
    assert result.returncode == 1, result.output
    assert ("add-index-non-concurrent", "0002_index") in findings_of(out)
    assert snapshot(victim) == before
    assert b"INJECTED" not in target.read_bytes()
    assert project.leftover_folders() == []
    assert postgres_processes_under(project.tmpdir) == []


RACER = r"""
victim="$1"; shift
end=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
  for d in "$@"/migration-guard-pg-*/c; do
    [ -d "$d" ] || continue
    rm -rf "$d/data" 2>/dev/null
    ln -sfn "$victim" "$d/data" 2>/dev/null
  done
done
"""


@as_root
@needs_cluster
def test_swapping_the_data_directory_for_a_link_during_a_restore_changes_nothing(tmp_path, victim):
    """The server's account swaps its data directory for a link to a root folder, in a
    loop, while the cluster is restored from a cache entry (five times): root writes,
    chmods and chowns nothing there."""
    name = test_account()
    cluster = _cluster()
    with cluster:
        saved = tmp_path / "entry"
        cluster.save_data(saved)
    before = snapshot(victim)
    tmpdir = Path(tempfile.mkdtemp(prefix="mgr-", dir="/tmp"))
    tmpdir.chmod(0o755)
    env = {**os.environ, "MIGRATION_GUARD_PG_USER": name, "TMPDIR": str(tmpdir)}
    racer = subprocess.Popen(
        [*setpriv(name), "sh", "-c", RACER, "racer", str(victim), str(tmpdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        outcomes = []
        for _ in range(5):
            child = subprocess.run(
                [sys.executable, "-c", RESTORE, str(saved)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
                check=False,
            )
            outcomes.append(child.returncode)
            assert "Traceback" not in child.stderr, child.stderr
    finally:
        racer.kill()
        racer.wait()
    assert snapshot(victim) == before
    assert list(tmpdir.glob("migration-guard-pg-*")) == []
    assert postgres_processes_under(tmpdir) == []
    shutil.rmtree(tmpdir)
    assert set(outcomes) <= {0, 3}, outcomes


RESTORE = """
import sys
from pathlib import Path
from migration_guard.exceptions import ProviderError
from migration_guard.postgres.embedded import embedded_cluster
from migration_guard.postgres.local import local_cluster
cluster = embedded_cluster() or local_cluster()
cluster._data_source = Path(sys.argv[1])
try:
    with cluster:
        pass
except ProviderError as exc:
    print(exc, file=sys.stderr)
    sys.exit(3)
"""


def _cluster() -> local_source.LocalCluster:
    cluster = embedded_cluster() or local_source.local_cluster()
    assert cluster is not None
    return cluster


def test_account() -> str:
    """An account for tests that must know the server's account in advance."""
    name = "migration-guard-pgtest"
    try:
        pwd.getpwnam(name)
    except KeyError:
        account._create_account(name)
    return name


test_account.__test__ = False  # type: ignore[attr-defined]


# --- item 2: the stale-folder sweep ---------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(child.stdout)


@as_root
def test_the_sweep_signals_no_process_it_did_not_start(drop_box):
    """``nobody`` plants a stale-looking folder naming an unrelated process; root forges
    nothing but finds a folder of its own whose recorded start time does not match: the
    sweep signals neither, and leaves the planted folder alone."""
    parent = drop_box  # a TMPDIR every account can write, like /tmp
    unrelated = subprocess.Popen(["sleep", "300"])
    try:
        dead = _dead_pid()
        planted = parent / f"{local_source.TEMP_PREFIX}planted"
        script = (
            f"mkdir -p {planted}/data {planted}/c/data && echo {dead} > {planted}/owner.pid && "
            f"printf '%s\\n' {unrelated.pid} > {planted}/data/postmaster.pid && "
            f"printf '%s\\n' {unrelated.pid} > {planted}/c/data/postmaster.pid && "
            f"echo '{unrelated.pid} {account.start_time(unrelated.pid)}' > {planted}/server.pid"
        )
        done = as_user("nobody", script)
        assert done.returncode == 0, done.stderr
        ours = parent / f"{local_source.TEMP_PREFIX}ours"
        (ours / "c").mkdir(parents=True)
        (ours / "owner.pid").write_text(str(dead))
        (ours / "server.pid").write_text(f"{unrelated.pid} 12345\n")  # another start time
        removed = local_source.sweep_stale_dirs(parent)
        time.sleep(0.2)
        assert unrelated.poll() is None, "the sweep signalled a process it did not start"
        assert removed == [ours]
        assert planted.is_dir() and (planted / "owner.pid").is_file()
    finally:
        unrelated.kill()
        unrelated.wait()


@needs_cluster
def test_the_sweep_stops_a_server_proven_ours(tmp_path):
    """The other side: a killed audit's server (recorded pid and start time match) is
    stopped and its folder removed."""
    code = (
        "import os, sys, time\n"
        "from migration_guard.postgres.embedded import embedded_cluster\n"
        "from migration_guard.postgres.local import local_cluster\n"
        "c = embedded_cluster() or local_cluster()\n"
        "with c:\n"
        "    print(c.directory, c.pid, flush=True)\n"
        "    time.sleep(300)\n"
    )
    tmpdir = Path(tempfile.mkdtemp(prefix="mgr-", dir="/tmp"))
    tmpdir.chmod(0o755)
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        start_new_session=True,
    )
    try:
        folder, pid = child.stdout.readline().split()  # type: ignore[union-attr]
        child.kill()
        child.wait()
        # The parent-death signal already stops it; the sweep must not be fooled either way.
        removed = local_source.sweep_stale_dirs(tmpdir)
        assert Path(folder) in removed
        assert wait_until(lambda: not _running(int(pid)), timeout=15)
        assert list(tmpdir.iterdir()) == []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


# --- item 3: cache entries are data, never configuration ------------------------------------


def _plant_configuration(entry: Path, drop_box: Path) -> None:
    """What a merge-request pipeline writing the shared cache plants in an entry, with
    headers of the kind the cache writes and the manifest made to match, so the entry
    looks whole."""
    archive = entry / DATA
    proof = drop_box / "restore-command-ran"
    plant_member(archive, "data/recovery.signal", b"")
    plant_member(archive, "data/standby.signal", b"")
    conf = (
        f"restore_command = 'env > {proof}; false'\n"
        f"archive_mode = on\narchive_command = 'env > {proof}'\n"
        "shared_preload_libraries = 'planted_library'\n"
    )
    plant_member(archive, "data/postgresql.auto.conf", conf.encode())
    plant_member(archive, "data/pg_hba.conf", b"host all all 0.0.0.0/0 trust\n")


@needs_cluster
def test_a_planted_cache_entry_runs_no_command_and_the_server_sees_no_secret(project, drop_box):
    """A cache entry carrying recovery.signal, restore/archive commands, a preload library
    and an open pg_hba.conf is restored as data: the server starts (so the library was not
    loaded), no command of the entry runs, the audit reports normally. A migration that
    dumps the server's environment (COPY TO PROGRAM) finds no secret of the audit's."""
    dump = drop_box / "server-env"
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_index", [INDEX, program(f"env > {dump}")])
    secret = {"CI_JOB_TOKEN": "glcbt-s3cret-token", "GITHUB_TOKEN": "ghs_s3cret"}
    first = project.run("inv", "0002", "--postgres", SOURCE, **secret)
    assert first.returncode == 1, first.output
    [entry] = project.base_entries()
    _plant_configuration(entry, drop_box)
    dump.unlink()
    out = project.root / "report.json"
    result = project.run(
        "inv", "0002", "--postgres", SOURCE, "--format", "json", "--output", str(out), **secret
    )
    assert result.returncode == 1, result.output
    assert any(RESTORED in n for n in notes_of(out)), result.output
    assert ("add-index-non-concurrent", "0002_index") in findings_of(out)
    assert not (drop_box / "restore-command-ran").exists()
    environment = dump.read_text()  # the migration's program did run, as the server
    assert "PATH=" in environment
    for value in secret.values():
        assert value not in environment
    assert project.leftover_folders() == []


@as_root
@needs_cluster
@pytest.mark.parametrize("how", ["owned by another account", "writable by others"])
def test_a_cache_folder_another_account_could_write_is_not_used(project, how):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_index", [INDEX])
    project.cache.mkdir()
    if how == "owned by another account":
        nobody = pwd.getpwnam("nobody")
        os.chown(project.cache, nobody.pw_uid, nobody.pw_gid)
    else:
        project.cache.chmod(0o777)
    for _ in range(2):
        out = project.root / "report.json"
        result = project.run(
            "inv", "0002", "--postgres", SOURCE, "--format", "json", "--output", str(out)
        )
        assert result.returncode == 1, result.output
        assert "not using the base-state cache" in result.stderr
        assert not any(RESTORED in n for n in notes_of(out))
    assert list(project.cache.iterdir()) == []
    assert BaseStateCache(project.cache).usable() is False


# --- item 5: the server's account owns nothing else -----------------------------------------


@as_root
@needs_cluster
def test_the_server_account_cannot_write_into_a_real_cluster(project):
    """The migration writes into a folder of the machine's ``postgres`` account (where a
    real cluster's data directory lives): the throwaway server's account may not."""
    real = Path(tempfile.mkdtemp(prefix="mg-real-cluster-", dir="/tmp"))
    postgres = pwd.getpwnam("postgres") if _has("postgres") else pwd.getpwnam("nobody")
    os.chown(real, postgres.pw_uid, postgres.pw_gid)
    real.chmod(0o700)
    try:
        write = f"COPY (SELECT 'pwned') TO '{real}/pwned'"
        project.migration("0001_initial", [CREATE_ITEM])
        project.migration("0002_write", [f"migrations.RunSQL({write!r}, migrations.RunSQL.noop)"])
        out = project.root / "report.json"
        result = project.run(
            "inv", "0002", "--postgres", SOURCE, "--format", "json", "--output", str(out)
        )
        assert result.returncode == 1, result.output
        report = json.loads(out.read_text())
        [migration] = report["migrations"]
        assert migration["status"] == "failed"
        assert "Permission denied" in migration["error"]
        assert list(real.iterdir()) == []
    finally:
        shutil.rmtree(real)


def _has(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@as_root
@needs_cluster
def test_the_server_runs_as_an_account_of_its_own(project, drop_box):
    proof = drop_box / "whoami"
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_index", [INDEX, program(f"id -u > {proof}; id -G >> {proof}")])
    result = project.run("inv", "0002", "--postgres", SOURCE)
    assert result.returncode == 1, result.output
    uid, groups = proof.read_text().split("\n")[:2]
    entry = pwd.getpwuid(int(uid))
    assert entry.pw_name.startswith(account.POOL_PREFIX)
    assert entry.pw_name not in ("postgres", "nobody") and entry.pw_uid != 0
    assert not os.path.exists(entry.pw_dir)  # no home: it owns nothing
    assert groups.split() == [str(entry.pw_gid)]  # none of root's groups
    assert account.processes_of(entry.pw_uid) == []  # nothing of it left running


@as_root
@needs_cluster
def test_an_account_that_owns_files_is_refused(project):
    if not _has("postgres"):
        pytest.skip("no postgres account on this machine")
    project.migration("0001_initial", [CREATE_ITEM])
    result = project.run("inv", "0001", "--postgres", SOURCE, MIGRATION_GUARD_PG_USER="postgres")
    assert result.returncode == 2, result.output
    assert "owns" in result.stderr and "must own nothing" in result.stderr
    assert project.leftover_folders() == []


@as_root
@needs_cluster
def test_what_the_server_account_leaves_running_is_killed(project, drop_box):
    """A migration starts a daemon as the server's account (setsid, out of the server's
    process group): it does not outlive the audit."""
    pidfile = drop_box / "daemon.pid"
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_index",
        [INDEX, program(f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' >/dev/null 2>&1 &")],
    )
    result = project.run("inv", "0002", "--postgres", SOURCE)
    assert result.returncode == 1, result.output
    assert wait_until(pidfile.exists, timeout=5)
    pid = int(pidfile.read_text())
    assert wait_until(lambda: not _running(pid), timeout=10), "the daemon survived"


@as_root
@needs_cluster
def test_shared_memory_the_server_account_leaves_is_removed(project):
    """A segment in /dev/shm owned by the server's account (what initdb's postgres leaves
    when it is killed mid-way) does not outlive the audit; one of another account does."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm here")
    name = f"PostgreSQL.{os.getpid()}{secrets.randbelow(10**6)}"
    other = Path("/dev/shm") / f"PostgreSQL.{os.getpid()}other"
    other.write_bytes(b"x")  # root's: not the account's
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_index", [INDEX, program(f"head -c 4096 /dev/zero > /dev/shm/{name}")])
    try:
        result = project.run("inv", "0002", "--postgres", SOURCE)
        assert result.returncode == 1, result.output
        assert not (Path("/dev/shm") / name).exists(), "the account's segment survived"
        assert other.exists()
    finally:
        other.unlink()
        with contextlib.suppress(FileNotFoundError):
            (Path("/dev/shm") / name).unlink()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
