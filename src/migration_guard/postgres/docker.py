"""A throwaway server in a Docker container, through testcontainers.

The image is chosen by the user (``postgres:<version>``) so the audit can run
on production's major version. Needs the ``docker`` extra and a running daemon.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import secrets
from typing import Any

from ..exceptions import ProviderError
from ..signals import shielded
from .base import ConnectionInfo, version_text

log = logging.getLogger(__name__)

DEFAULT_IMAGE = "postgres:17"


def testcontainers_installed() -> bool:
    return importlib.util.find_spec("testcontainers.postgres") is not None


def docker_unavailable_reason() -> str | None:
    """None when a Docker daemon answers; otherwise why not, in a sentence."""
    if not testcontainers_installed():
        return "testcontainers is not installed (pip install 'django-migration-guard[docker]')"
    try:
        import docker  # testcontainers depends on the docker SDK
    except ImportError:  # pragma: no cover - testcontainers requires it
        return "the docker Python package is not installed"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:
        return f"no Docker daemon answers ({exc.__class__.__name__}: {exc})"
    return None


def image_for(version: int | str | None) -> str:
    """``16`` -> ``postgres:16``; a full image name is kept as given."""
    if version is None or version == "":
        return DEFAULT_IMAGE
    text = str(version)
    return text if ":" in text or "/" in text else f"postgres:{text}"


class DockerServer:
    """A ``postgres:<version>`` container, removed when the block ends."""

    source = "docker"

    def __init__(self, image: str = DEFAULT_IMAGE) -> None:
        self.image = image
        #: A new password per container: the port is published on the Docker host, where
        #: other accounts and containers could reach it during the audit.
        self.password = secrets.token_urlsafe(24)
        self._container: Any = None
        self._info: ConnectionInfo | None = None
        self._version: int | None = None

    @property
    def info(self) -> ConnectionInfo:
        if self._info is None:
            raise ProviderError("the container is not running; use it inside a `with` block")
        return self._info

    @property
    def server_version(self) -> int:
        if self._version is None:
            raise ProviderError("the container is not running")
        return self._version

    @property
    def description(self) -> str:
        version = version_text(self._version) if self._version else "?"
        return f"PostgreSQL {version} (docker: {self.image})"

    def __enter__(self) -> DockerServer:
        reason = docker_unavailable_reason()
        if reason:
            raise ProviderError(f"cannot use Docker: {reason}")
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer(
            self.image, username="postgres", password=self.password, dbname="postgres"
        )
        container.with_command(
            "postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c autovacuum=off -c jit=off"
        )
        try:
            with shielded():
                self._container = container
            container.start()
            host = container.get_container_host_ip()
            port = int(container.get_exposed_port(5432))
            self._info = ConnectionInfo(
                host=host, port=port, user="postgres", password=self.password
            )
            with self._info.connect() as conn:
                self._version = int(conn.info.server_version)
        except BaseException as exc:
            self.__exit__(None, None, None)
            if isinstance(exc, Exception) and not isinstance(exc, ProviderError):
                raise ProviderError(f"the {self.image} container did not start: {exc}") from exc
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        with shielded():
            container, self._container = self._container, None
            self._info = None
            if container is not None:
                with contextlib.suppress(Exception):
                    container.stop()
