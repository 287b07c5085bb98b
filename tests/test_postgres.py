"""The four PostgreSQL sources, the scratch database, and cleanup on every exit path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from migration_guard.exceptions import PostgresUnavailable, ProviderError, ScratchDatabaseError
from migration_guard.postgres import PostgresOptions, open_server
from migration_guard.postgres import docker as docker_source
from migration_guard.postgres import embedded as embedded_source
from migration_guard.postgres import local as local_source
from migration_guard.postgres.base import ConnectionInfo, redact, version_text
from migration_guard.postgres.scratch import PREFIX, drop_database, scratch_database

REPO = Path(__file__).resolve().parent.parent


def _server_version(info: ConnectionInfo) -> int:
    with info.connect() as conn:
        return int(conn.info.server_version)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return state != "Z"


@pytest.mark.skipif(local_source.pick_bindir() is None, reason="no PostgreSQL binaries installed")
def test_local_cluster_runs_and_is_removed():
    with open_server(PostgresOptions(source="local")) as server:
        assert server.source == "local"
        directory = server.directory
        pid = server.pid
        assert directory is not None and directory.exists()
        assert server.server_version == _server_version(server.info)
        assert server.info.host == str(directory / "c")  # Unix socket only
        with server.info.connect() as conn:
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN "
                    "('fsync', 'synchronous_commit', 'full_page_writes', 'listen_addresses', "
                    "'autovacuum')"
                ).fetchall()
            )
        assert settings == {
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "listen_addresses": "",
            "autovacuum": "off",
        }
        assert (
            "local" in server.description
            and version_text(server.server_version) in server.description
        )
    assert not directory.exists()
    assert not _alive(pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when the tests run as root")
def test_local_cluster_as_root_runs_server_as_unprivileged_user():
    with open_server(PostgresOptions(source="local")) as server:
        uid = os.stat(f"/proc/{server.pid}").st_uid
        assert uid != 0


def test_embedded_wheel_runs_its_own_version():
    if embedded_source.embedded_bindir() is None:
        pytest.skip("the embedded extra is not installed")
    with open_server(PostgresOptions(source="embedded")) as server:
        assert server.source == "embedded"
        assert server.server_version >= 160000
        directory = server.directory
        with server.info.connect() as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert directory is not None and not directory.exists()


def test_url_source_uses_existing_server_and_scratch_database_is_dropped(pg_url, pg_server):
    with open_server(PostgresOptions(source="url", database_url=pg_url)) as server:
        assert server.source == "url"
        assert server.server_version == pg_server.server_version
        with scratch_database(server) as info:
            assert info.dbname.startswith(PREFIX)
            with info.connect() as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (info.dbname,)
            name = info.dbname
        with server.info.connect() as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
        assert exists is None


def test_keep_leaves_the_scratch_database(pg_url):
    with open_server(PostgresOptions(source="url", database_url=pg_url)) as server:
        with scratch_database(server, keep=True) as info:
            name = info.dbname
        with server.info.connect() as conn:
            assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        drop_database(server, name)


def test_scratch_database_never_drops_a_foreign_database(pg_url):
    with open_server(PostgresOptions(source="url", database_url=pg_url)) as server:
        with pytest.raises(ScratchDatabaseError, match="refusing to drop"):
            drop_database(server, "postgres")


def test_unreachable_url_is_a_clear_error_without_password():
    url = "postgresql://someone:s3cret@127.0.0.1:1/db"
    with (
        pytest.raises(ProviderError) as info,
        open_server(PostgresOptions(source="url", database_url=url)),
    ):
        pass
    message = str(info.value)
    assert "s3cret" not in message
    assert "someone@127.0.0.1:1/db" in message


def test_malformed_url_is_named():
    from migration_guard.exceptions import ConfigurationError

    with (
        pytest.raises(ConfigurationError, match="not a valid PostgreSQL URL"),
        open_server(
            PostgresOptions(source="url", database_url="postgresql://a:b@host:notaport/db")
        ),
    ):
        pass


def test_redact_hides_passwords_in_urls_and_keywords():
    assert redact("postgresql://u:pw@h/db failed") == "postgresql://u:***@h/db failed"
    assert redact("host=x password=pw user=u") == "host=x password=*** user=u"


def test_docker_source(request):
    reason = docker_source.docker_unavailable_reason()
    if reason:
        pytest.skip(f"docker source not testable here: {reason}")
    with open_server(PostgresOptions(source="docker", docker_image="postgres:16")) as server:
        assert server.source == "docker"
        assert server.server_version // 10000 == 16


def test_docker_image_defaults_follow_production_version():
    assert docker_source.image_for(16) == "postgres:16"
    assert docker_source.image_for("postgis/postgis:16-3.4") == "postgis/postgis:16-3.4"
    assert docker_source.image_for(None) == docker_source.DEFAULT_IMAGE


def test_no_postgres_anywhere_says_all_four_ways(monkeypatch):
    monkeypatch.delenv("MIGRATION_GUARD_DATABASE_URL", raising=False)
    monkeypatch.setattr(local_source, "candidate_bindirs", lambda explicit=None: [])
    monkeypatch.setattr(embedded_source, "embedded_bindir", lambda prefer=None: None)
    monkeypatch.setattr(
        docker_source, "docker_unavailable_reason", lambda: "no Docker daemon answers"
    )
    with pytest.raises(PostgresUnavailable) as info, open_server(PostgresOptions(source="auto")):
        pass
    message = str(info.value)
    for needle in (
        "--database-url",
        "MIGRATION_GUARD_DATABASE_URL",
        "apt install postgresql",
        "MIGRATION_GUARD_PG_BINDIR",
        "django-migration-guard[embedded]",
        "django-migration-guard[docker]",
        "no Docker daemon answers",
        "What was tried",
    ):
        assert needle in message


def test_explicit_source_that_is_missing_says_so(monkeypatch):
    monkeypatch.setattr(embedded_source, "embedded_bindir", lambda prefer=None: None)
    with (
        pytest.raises(PostgresUnavailable, match="'embedded' source"),
        open_server(PostgresOptions(source="embedded")),
    ):
        pass


def test_stale_folder_of_a_killed_run_is_swept(tmp_path):
    stale = tmp_path / f"{local_source.TEMP_PREFIX}stale"
    (stale / "data").mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (stale / "owner.pid").write_text(dead.stdout.strip())
    alive = tmp_path / f"{local_source.TEMP_PREFIX}alive"
    alive.mkdir()
    (alive / "owner.pid").write_text(str(os.getpid()))
    foreign = tmp_path / f"{local_source.TEMP_PREFIX}foreign"
    foreign.mkdir()  # no owner file: not ours to judge
    removed = local_source.sweep_stale_dirs(tmp_path)
    assert removed == [stale]
    assert alive.exists() and foreign.exists() and not stale.exists()


_CHILD = textwrap.dedent(
    """
    import sys, time
    from migration_guard.postgres import PostgresOptions, open_server
    from migration_guard.signals import terminating_raises
    with terminating_raises(), open_server(PostgresOptions(source="local")) as server:
        print(server.directory, server.pid, flush=True)
        time.sleep(120)
    """
)


@pytest.mark.skipif(local_source.pick_bindir() is None, reason="no PostgreSQL binaries installed")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_leaves_no_server_and_no_folder(sig):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = child.stdout.readline().split()
    assert line, child.stderr.read()
    directory, pid = Path(line[0]), int(line[1])
    assert directory.exists() and _alive(pid)
    child.send_signal(sig)
    child.wait(timeout=60)
    assert child.returncode != 0
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "postgres survived the interrupted run"
    assert not directory.exists(), "the cluster folder was left behind"


@pytest.mark.skipif(local_source.pick_bindir() is None, reason="no PostgreSQL binaries installed")
def test_server_dies_with_a_killed_parent():
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    directory, pid = child.stdout.readline().split()
    child.kill()
    child.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(int(pid))
    # the folder of a killed run is removed by the next run
    removed = local_source.sweep_stale_dirs(Path(directory).parent)
    assert Path(directory) in removed or not Path(directory).exists()
