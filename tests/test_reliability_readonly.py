"""``--unapplied`` and ``--stats-url`` only read: proved on a database of the session server.

"Production" is a database with ``django_migrations`` (the first migration
recorded) and the app's table. The command reads it through the project's
``DATABASES`` (``DATABASE_URL``) for ``--unapplied``, and as ``--stats-url``:

* as a role with SELECT rights only and ``default_transaction_read_only = on``:
  the audit works;
* as the database's owner, who could write: nothing is written all the same.

Nothing written means: no new relation (``pg_class``), the same rows in
``django_migrations``, and ``pg_stat_database`` counting no inserted, updated
or deleted row in that database.
(``tests/test_stats.py::test_blocking_finding_shows_production_size_and_an_estimate``
proves the same of the stats connection alone, with production sizes.)
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from psycopg import sql

from migration_guard.postgres.base import ConnectionInfo

from .reliability import CREATE_ITEM, Project, project_fixture, scratch_databases, url_of


@dataclasses.dataclass
class Production:
    server: ConnectionInfo  # superuser, maintenance database
    admin: ConnectionInfo  # superuser, the production database
    owner_url: str  # the database's owner: could write
    reader_url: str  # SELECT only, default_transaction_read_only = on
    dbname: str
    passwords: tuple[str, str]

    def counters(self) -> dict[str, int]:
        with self.server.connect(autocommit=True) as conn:
            row = conn.execute(
                "SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
                "WHERE datname = %s",
                (self.dbname,),
            ).fetchone()
        assert row is not None
        return dict(zip(("inserted", "updated", "deleted"), map(int, row), strict=True))

    def settled(self) -> dict[str, int]:
        last = self.counters()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.counters()
            if now == last:
                break
            last = now
        return last

    def contents(self) -> tuple[Any, ...]:
        with self.admin.connect(autocommit=True) as conn:
            relations = conn.execute("SELECT count(*), max(oid::bigint) FROM pg_class").fetchone()
            applied = conn.execute(
                "SELECT count(*), max(xmin::text::bigint) FROM django_migrations"
            ).fetchone()
        return relations, applied


@pytest.fixture
def production(pg_server) -> Iterator[Production]:
    suffix = uuid.uuid4().hex[:8]
    dbname, owner, reader = f"mg_rel_{suffix}", f"mg_owner_{suffix}", f"mg_reader_{suffix}"
    owner_pw, reader_pw = f"own-{uuid.uuid4().hex}", f"read-{uuid.uuid4().hex}"
    info = pg_server.info
    with info.connect(autocommit=True) as conn:
        for role, password in ((owner, owner_pw), (reader, reader_pw)):
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(password)
                )
            )
        conn.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(reader)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(dbname), sql.Identifier(owner)
            )
        )
    admin = info.with_dbname(dbname)
    with admin.connect(autocommit=True) as conn:
        conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        conn.execute(sql.SQL("GRANT ALL ON SCHEMA public TO {}").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(reader)))
        conn.execute(
            "CREATE TABLE django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL,"
            " name varchar(255) NOT NULL, applied timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES "
            "('contenttypes', '0001_initial', now()), "
            "('contenttypes', '0002_remove_content_type_name', now()), "
            "('inv', '0001_initial', now())"
        )
        conn.execute(
            "CREATE TABLE inv_item (id bigserial PRIMARY KEY, code varchar(20));"
            "INSERT INTO inv_item (code) SELECT g::text FROM generate_series(1, 1000) g;"
            "ANALYZE inv_item"
        )
        for table in ("django_migrations", "inv_item"):
            conn.execute(
                sql.SQL("ALTER TABLE {} OWNER TO {}").format(
                    sql.Identifier(table), sql.Identifier(owner)
                )
            )
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(
                    sql.Identifier(table), sql.Identifier(reader)
                )
            )
    as_role = lambda role, pw: url_of(  # noqa: E731
        dataclasses.replace(info, user=role, password=pw, dbname=dbname)
    )
    try:
        yield Production(
            info,
            admin,
            as_role(owner, owner_pw),
            as_role(reader, reader_pw),
            dbname,
            (owner_pw, reader_pw),
        )
    finally:
        with info.connect(autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))
            for role in (owner, reader):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture
def project(tmp_path) -> Iterator[Project]:
    yield from project_fixture(tmp_path)


def test_unapplied_and_stats_url_write_nothing(project, production, pg_server, pg_url):
    project.migration("0001_initial", [CREATE_ITEM])
    project.migration(
        "0002_unique_code",
        ["migrations.AlterField('item', 'code', models.CharField(max_length=20, unique=True))"],
    )
    before_contents = production.contents()
    before = production.settled()

    def audit(url: str):
        return project.run(
            "--unapplied",
            "--stats-url",
            url,
            "--database-url",
            pg_url,
            "--no-color",
            DATABASE_URL=url,
        )

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(audit, (production.reader_url, production.owner_url)))

    for result in results:
        assert result.returncode == 1, result.output  # the unique constraint is an error
        assert "migrations not yet applied on database 'default'" in result.stdout
        assert "inv.0002_unique_code" in result.stdout
        assert "inv.0001_initial" not in result.stdout
        assert "inv_item: 1,000 rows" in result.stdout  # read through --stats-url
        assert scratch_databases(pg_server.info, result.pid) == []
        for password in production.passwords:
            assert password not in result.output
    after = production.settled()
    assert after == before, (before, after)
    assert production.contents() == before_contents
