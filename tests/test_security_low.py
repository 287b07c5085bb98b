"""The low items of issue 11, each performed and shown to fail now.

* a POST answered 502 after the platform created the comment: still one comment;
* a token with a line break: refused, never printed, nothing sent;
* a half-written cache folder: removed by runs that only hit the cache;
* a cache entry restored onto a full disk: one short error with the disk-full hint;
* the docker source: a new password per container (SARIF URIs: test_security_rendering).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_guard.cache import MANIFEST, STALE_TEMP, BaseStateCache
from migration_guard.comment import CommentError
from migration_guard.postgres.docker import DockerServer

from .reliability import CREATE_ITEM, Project, postgres_processes_under, project_fixture
from .test_comment import FakeApi, github_env, gitlab_env, post, run_cli, save
from .test_comment import _no_proxy_and_no_ci_env as _no_ci  # noqa: F401 - autouse fixture
from .test_reliability_faults import SOURCE, needs_cluster, small
from .test_report_formats import sample_report

# --- a POST retried after a 502 ------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[FakeApi]:
    server = FakeApi()
    try:
        yield server
    finally:
        server.close()


def _post_answered_502(api: FakeApi, *, landed: bool, times: int = 1) -> None:
    """A POST is answered 502 (a proxy's), after the platform created the comment when
    ``landed``, else before."""
    handle = api.handle
    left = [times]

    def flaky(method, raw_path, headers, raw):
        if method == "POST" and left[0] > 0:
            left[0] -= 1
            if landed:
                handle(method, raw_path, headers, raw)
            else:
                api.requests.append(api.requests[-1].__class__(method, raw_path, {}, {}, None))
            return 502, {}, None
        return handle(method, raw_path, headers, raw)

    api.handle = flaky  # type: ignore[method-assign]


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_a_post_answered_502_after_it_landed_makes_one_comment(api, tmp_path, platform):
    _post_answered_502(api, landed=True)
    env = github_env(api, tmp_path) if platform == "github" else gitlab_env(api)
    outcome = post(sample_report(), env)
    assert outcome.action == "created"
    assert len(api.marked(platform)) == 1
    assert [m for m, _ in api.calls()].count("POST") == 1


def test_a_post_that_did_not_land_is_sent_again_once(api, tmp_path):
    _post_answered_502(api, landed=False)
    outcome = post(sample_report(), github_env(api, tmp_path))
    assert outcome.action == "created"
    assert len(api.marked()) == 1
    assert [m for m, _ in api.calls()].count("POST") == 2


def test_a_post_failing_every_time_gives_up_after_bounded_attempts(api, tmp_path):
    _post_answered_502(api, landed=False, times=100)
    with pytest.raises(CommentError) as info:
        post(sample_report(), github_env(api, tmp_path))
    assert "answered 502 to POST" in str(info.value) and "4 times" in str(info.value)
    assert api.marked() == []
    assert [m for m, _ in api.calls()].count("POST") == 4


# --- a token with control characters ------------------------------------------------------


@pytest.mark.parametrize("variable", ["GITHUB_TOKEN", "MIGRATION_GUARD_GITLAB_TOKEN"])
def test_a_token_with_a_line_break_is_refused_without_being_shown(api, tmp_path, variable):
    token = "ghp_first-half\r\nX-Injected: second-half"
    env = github_env(api, tmp_path) if variable == "GITHUB_TOKEN" else gitlab_env(api)
    env[variable] = token
    result = run_cli(env, "--report", str(save(sample_report(), tmp_path)))
    assert result.exit_code == 2
    assert f"{variable} holds a line break" in result.output
    for piece in ("first-half", "second-half", "Injected"):
        assert piece not in result.output
    assert api.requests == []


# --- half-written cache folders -----------------------------------------------------------


def test_cache_hits_remove_a_dead_writers_temporary_folder(tmp_path):
    cache = BaseStateCache(tmp_path / "cache")

    def save_data(dest: Path) -> None:
        dest.write_bytes(b"x" * 1024)

    entry = cache.store("k" * 32, save_data, dbname="db", migrations=3)
    assert entry is not None
    half = cache.directory / f".{'k' * 32}-12345-deadbeef"
    (half / "data").mkdir(parents=True)
    (half / "data" / "partial").write_bytes(b"y" * 1000)
    old = time.time() - STALE_TEMP - 60
    os.utime(half, (old, old))
    young = cache.directory / f".{'k' * 32}-12346-cafebabe"
    young.mkdir()
    for _ in range(2):  # every run a cache hit
        assert cache.lookup("k" * 32) is not None
    assert not half.exists()
    assert young.exists()  # a writer that may still be at work


# --- restoring onto a full disk -------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


@needs_cluster
def test_restoring_the_cache_onto_a_full_disk_is_one_short_error(project):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_index",
        ["migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"],
    )
    warm = project.run("inv", "0002", "--postgres", SOURCE)
    assert warm.returncode == 1, warm.output
    [entry] = project.base_entries()
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["bytes"] > 12 * 1024 * 1024  # more than the disk below holds
    prefix = small(project, project.tmpdir, 12)
    result = project.run("inv", "0002", "--postgres", SOURCE, "-v", "2", prefix=prefix)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert "No space left on device" in result.stderr
    assert "The disk is full" in result.stderr
    assert len(result.stderr) < 2000, len(result.stderr)
    assert max(len(line) for line in result.stderr.splitlines()) < 1000
    assert entry.is_dir() and (entry / MANIFEST).is_file(), result.stderr  # not blamed on it
    assert project.leftover_folders() == []
    assert postgres_processes_under(project.tmpdir) == []


# --- the docker source ---------------------------------------------------------------------


def test_each_docker_server_gets_its_own_password():
    first, second = DockerServer("postgres:16"), DockerServer("postgres:16")
    assert first.password != second.password
    assert len(first.password) >= 24
    assert "migration-guard" not in (first.password, second.password)
