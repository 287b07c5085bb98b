"""``--database-url``: privileged roles are refused, URLs and passwords never echoed.

The attacks of issue 11, items 4 and 9, run through the real command:

* with a superuser URL, one audited migration dropped another database, created a
  superuser role, ran ALTER SYSTEM and COPY ... TO PROGRAM, and the report said
  0 errors. Now a role with any right that reaches outside its database is refused
  (exit 2, naming the rights) before any migration runs, unless
  ``--allow-privileged-role``; and the ``reaches-outside-database`` rule flags such
  statements wherever the audit runs.
* a password with an unencoded space or ``@`` was printed (twice, or its tail) in
  the error. Now only scheme, user, host, port and database are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.url import describe_url

from .reliability import CREATE_ITEM, Project, project_fixture, scratch_databases, url_of

INDEX = "migrations.AddIndex('item', models.Index(fields=['code'], name='item_code_ix'))"
VICTIM_DB = "migration_guard_victim_db"
EVIL_ROLE = "migration_guard_evil"


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def _admin(info: ConnectionInfo) -> psycopg.Connection:
    return info.connect(autocommit=True)


@pytest.fixture
def role(pg_server) -> Iterator[object]:
    """Make a login role with given rights on the session's server; dropped afterwards."""
    made: list[str] = []

    def make(name: str, *rights: str, member_of: str | None = None) -> str:
        with _admin(pg_server.info) as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB " + " ".join(rights)).format(
                    sql.Identifier(name)
                )
            )
            if member_of:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(member_of), sql.Identifier(name)
                    )
                )
        made.append(name)
        return url_of(dataclasses.replace(pg_server.info, user=name, password=None))

    yield make
    with _admin(pg_server.info) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _victim(pg_server) -> Iterator[None]:
    with _admin(pg_server.info) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(VICTIM_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(VICTIM_DB)))
    try:
        yield
    finally:
        with _admin(pg_server.info) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(VICTIM_DB)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(EVIL_ROLE)))


victim = pytest.fixture(_victim)


def _exists(pg_server, query: str, name: str) -> bool:
    with _admin(pg_server.info) as conn:
        return conn.execute(query, (name,)).fetchone() is not None


def _attack(project: Project) -> None:
    project.migration("0001_initial", [CREATE_ITEM])
    statements = [
        f"CREATE ROLE {EVIL_ROLE} SUPERUSER LOGIN",
        "COPY (SELECT 1) TO PROGRAM 'true'",
        f"DROP DATABASE {VICTIM_DB}",
    ]
    ops = [f"migrations.RunSQL({s!r}, migrations.RunSQL.noop)" for s in statements]
    project.migration("0002_attack", [INDEX, *ops])


@pytest.mark.parametrize(
    ("rights", "member_of", "named"),
    [
        (("SUPERUSER",), None, "SUPERUSER"),
        (("CREATEROLE",), None, "CREATEROLE"),
        ((), "pg_execute_server_program", "member of pg_execute_server_program"),
        ((), "pg_write_server_files", "member of pg_write_server_files"),
        ((), "pg_read_server_files", "member of pg_read_server_files"),
    ],
)
def test_a_privileged_role_is_refused_before_anything_runs(
    project, pg_server, role, victim, rights, member_of, named
):
    _attack(project)
    url = role("migration_guard_privileged", *rights, member_of=member_of)
    result = project.run("inv", "0002", "--database-url", url)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert named in result.stderr
    assert "--allow-privileged-role" in result.stderr
    assert "CREATEDB and nothing more" in result.stderr
    assert _exists(pg_server, "SELECT 1 FROM pg_database WHERE datname = %s", VICTIM_DB)
    assert not _exists(pg_server, "SELECT 1 FROM pg_roles WHERE rolname = %s", EVIL_ROLE)
    assert scratch_databases(pg_server.info, result.pid) == []


def test_a_createdb_role_runs_and_the_rule_flags_every_reach(project, pg_server, role, victim):
    """The role the docs advise: the audit runs, says whose rights the code has, the
    attack's statements fail for lack of rights, and each is an error finding."""
    _attack(project)
    url = role("migration_guard_plain")
    out = project.root / "report.json"
    result = project.run(
        "inv", "0002", "--database-url", url, "--format", "json", "--output", str(out), "-v", "1"
    )
    assert result.returncode == 1, result.output
    assert "the audited migrations run as role migration_guard_plain with CREATEDB" in result.stderr
    report = json.loads(out.read_text())
    [migration] = report["migrations"]
    assert migration["status"] == "failed"  # no right to any of it; rolled back
    assert _exists(pg_server, "SELECT 1 FROM pg_database WHERE datname = %s", VICTIM_DB)
    assert not _exists(pg_server, "SELECT 1 FROM pg_roles WHERE rolname = %s", EVIL_ROLE)
    reaches = [f for f in migration["findings"] if f["rule"] == "reaches-outside-database"]
    assert [f["category"] for f in reaches] == ["security"] * 3
    assert all(f["severity"] == "error" for f in reaches)
    assert scratch_databases(pg_server.info, result.pid) == []


def test_allowing_a_privileged_role_says_so(project, pg_server, role):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration("0002_index", [INDEX])
    url = role("migration_guard_allowed", "CREATEROLE")
    result = project.run("inv", "0002", "--database-url", url, "--allow-privileged-role")
    assert result.returncode == 1, result.output
    assert (
        "the audited migrations run as role migration_guard_allowed with CREATEROLE"
        in result.stderr
    )
    assert scratch_databases(pg_server.info, result.pid) == []


# --- item 9: passwords of malformed URLs ------------------------------------------------------

SECRET = "Tr0ub4dor"


@pytest.mark.parametrize(
    "password",
    [f"{SECRET} and3", f"{SECRET}@and3", f"{SECRET}/and3", f"{SECRET}\r\nand3"],
    ids=["space", "at-sign", "slash", "line-break"],
)
@pytest.mark.parametrize("where", ["--database-url", "--stats-url", "environment"])
def test_a_malformed_url_never_shows_its_password(project, pg_url, password, where):
    project.migration("0001_initial", [CREATE_ITEM])
    bad = f"postgresql://someone:{password}@db.example.com:5432/app"
    args: list[str] = ["inv", "0001"]
    env = {}
    if where == "--database-url":
        args += ["--database-url", bad]
    elif where == "--stats-url":
        args += ["--stats-url", bad, "--database-url", pg_url]
    else:
        env["MIGRATION_GUARD_DATABASE_URL"] = bad
    result = project.run(*args, "-v", "3", **env)
    assert result.returncode == 2, result.output
    assert "Traceback" not in result.output
    assert "not a valid PostgreSQL URL" in result.stderr
    assert "postgresql://someone@db.example.com:5432/app" in result.stderr
    for piece in (SECRET, "and3", SECRET[3:], "4dor"):
        assert piece not in result.output, (piece, result.output)


def test_the_tolerant_description_keeps_only_what_identifies_the_server():
    cases = {
        "postgresql://u:p w@h:5/d": "postgresql://u@h:5/d",
        "postgresql://u:p@w@h/d?sslmode=require&password=x": "postgresql://u@h/d",
        "postgres://u@/d?host=/run/pg&port=6": "postgres://u@/run/pg (port 6)/d",
        "host=h port=7 user=u password='a b' dbname=d": "u@h:7/d",
        "password=only": "(no host)",
        "\x00garbage@@://": "(no host)",
    }
    for url, expected in cases.items():
        assert describe_url(url) == expected, url
