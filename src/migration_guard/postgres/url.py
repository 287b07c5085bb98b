"""An existing server given by URL: ``--database-url`` or ``MIGRATION_GUARD_DATABASE_URL``.

Nothing is started or stopped; all work happens in a scratch database that is
created on it and dropped afterwards. The role needs CREATEDB.
"""

from __future__ import annotations

import os

import psycopg

from ..exceptions import ConfigurationError, ProviderError
from .base import ConnectionInfo, redact, version_text

ENV_VAR = "MIGRATION_GUARD_DATABASE_URL"


def url_from_environment() -> str | None:
    return os.environ.get(ENV_VAR) or None


def parse_url(url: str, *, origin: str = "--database-url") -> ConnectionInfo:
    """Parse a URL, naming where it came from when it is malformed (without its secret)."""
    if not url.strip():
        raise ConfigurationError(f"{origin} is empty; give a URL like postgresql://user@host/db")
    try:
        return ConnectionInfo.from_url(url.strip())
    except (psycopg.ProgrammingError, ValueError) as exc:
        raise ConfigurationError(
            f"{origin} is not a valid PostgreSQL URL ({redact(str(exc))}): {redact(url)}. "
            "Expected postgresql://user:password@host:port/dbname"
        ) from exc


class UrlServer:
    """A server that runs elsewhere; entering checks that it answers."""

    source = "url"

    def __init__(self, url: str, *, origin: str = "--database-url") -> None:
        self._info = parse_url(url, origin=origin)
        self._origin = origin
        self._version: int | None = None

    @property
    def info(self) -> ConnectionInfo:
        return self._info

    @property
    def server_version(self) -> int:
        if self._version is None:
            raise ProviderError("the server has not been contacted yet; use it in a `with` block")
        return self._version

    @property
    def description(self) -> str:
        version = version_text(self._version) if self._version else "?"
        return f"PostgreSQL {version} (url: {self._info.redacted()})"

    def __enter__(self) -> UrlServer:
        try:
            with self._info.connect() as conn:
                self._version = int(conn.info.server_version)
        except psycopg.Error as exc:
            raise ProviderError(
                f"cannot connect to the server from {self._origin} ({self._info.redacted()}): "
                f"{redact(str(exc)).strip()}. Check that it runs and that the URL is right."
            ) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        return None
