"""The deploy guard on real PostgreSQL: ``manage.py migrate`` with another connection in the way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from migration_guard.postgres.base import ConnectionInfo

from .deploy_project import DeployProject, Holder, create_database, drop_database

FAST = {"lock_timeout": "400ms", "lock_retries": 3, "lock_retry_backoff": ["100ms"]}
ADD_FLAG = "migrations.AddField('item', 'flag', models.BooleanField(default=False))"


@pytest.fixture
def database(pg_server) -> Iterator[ConnectionInfo]:
    info = create_database(pg_server.info)
    try:
        yield info
    finally:
        drop_database(pg_server.info, info)


@pytest.fixture
def project(tmp_path, database) -> DeployProject:
    project = DeployProject(tmp_path / "project", database, guard=FAST)
    project.item_table()
    return project


@pytest.fixture
def holder(project) -> Iterator[Holder]:
    holder = Holder(project)
    try:
        yield holder
    finally:
        holder.close()


def test_atomic_retry_succeeds_once_the_holder_commits(project, holder):
    project.migration("0002_flag", [ADD_FLAG])
    holder.run("SELECT count(*) FROM inv_item")  # ACCESS SHARE, kept: ADD COLUMN must wait
    running = project.start("inv")
    running.wait_for("retrying: inv.0002_flag rolled back")
    holder.commit()
    result = running.finish()
    print(result.output)
    assert result.returncode == 0, result.output
    assert "applied after retry: inv.0002_flag on attempt 2 of 4" in result.stderr
    assert project.applied() == ["0001_initial", "0002_flag"]
    assert "flag" in project.columns()
