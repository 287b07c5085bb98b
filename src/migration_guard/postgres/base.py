"""What every PostgreSQL source gives: connection info, server version, lifetime."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Protocol, runtime_checkable

import psycopg
from psycopg import conninfo as pg_conninfo

from ..conf import SOURCES  # noqa: F401  (the option's values live with the settings)

_SECRET_KEYS = ("password", "sslpassword")


@dataclasses.dataclass(frozen=True)
class ConnectionInfo:
    """Where a server listens and how to log in (libpq keywords)."""

    host: str
    port: int
    user: str
    password: str | None = None
    dbname: str = "postgres"
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> ConnectionInfo:
        """Parse a ``postgresql://`` URL or a libpq ``key=value`` string."""
        params: dict[str, Any] = pg_conninfo.conninfo_to_dict(url)
        host = params.pop("host", None) or "localhost"
        port = int(params.pop("port", None) or 5432)
        user = params.pop("user", None) or "postgres"
        password = params.pop("password", None)
        dbname = params.pop("dbname", None) or "postgres"
        extra = tuple(sorted((str(k), str(v)) for k, v in params.items()))
        return cls(host=host, port=port, user=user, password=password, dbname=dbname, options=extra)

    def with_dbname(self, dbname: str) -> ConnectionInfo:
        return dataclasses.replace(self, dbname=dbname)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``psycopg.connect``."""
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
        }
        if self.password is not None:
            out["password"] = self.password
        out.update(dict(self.options))
        return out

    def conninfo(self) -> str:
        return pg_conninfo.make_conninfo(**self.kwargs())

    def redacted(self) -> str:
        """A printable form of the connection, without any secret."""
        where = self.host if self.host.startswith("/") else f"{self.host}:{self.port}"
        return f"{self.user}@{where}/{self.dbname}"

    def django_settings(self) -> dict[str, Any]:
        """The parts of a Django ``DATABASES`` entry that point at this server."""
        return {
            "NAME": self.dbname,
            "USER": self.user,
            "PASSWORD": self.password or "",
            "HOST": self.host,
            "PORT": str(self.port),
            "OPTIONS": dict(self.options),
        }

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        params = self.kwargs()
        params.setdefault("connect_timeout", 10)
        params.update(kwargs)
        return psycopg.connect(**params)


@runtime_checkable
class PostgresServer(Protocol):
    """A running PostgreSQL server, usable as a context manager.

    ``__enter__`` makes sure it runs (starting it if the source starts servers);
    ``__exit__`` stops whatever was started and removes its files.
    """

    source: str

    @property
    def info(self) -> ConnectionInfo:
        """Connection to a maintenance database with rights to CREATE DATABASE."""
        ...

    @property
    def server_version(self) -> int:
        """``server_version_num`` of the running server, e.g. ``150018``."""
        ...

    @property
    def description(self) -> str:
        """One line for people: version and where it came from."""
        ...

    def __enter__(self) -> PostgresServer: ...

    def __exit__(self, *exc: object) -> None: ...


def version_text(version_num: int) -> str:
    """``150018`` -> ``"15.18"``, ``90624`` -> ``"9.6.24"``."""
    major = version_num // 10000
    if major >= 10:
        return f"{major}.{version_num % 10000}"
    return f"{major}.{(version_num // 100) % 100}.{version_num % 100}"


def major_of(version_num: int) -> int:
    return version_num // 10000


def query_server_version(info: ConnectionInfo) -> int:
    with info.connect() as conn:
        return int(conn.info.server_version)


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_KV_PASSWORD = re.compile(
    r"((?:^|\s)(?:" + "|".join(_SECRET_KEYS) + r")\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)"
)


def redact(text: str) -> str:
    """Hide passwords in URLs and ``password=`` pairs inside any text."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    return _KV_PASSWORD.sub(r"\1***", text)
