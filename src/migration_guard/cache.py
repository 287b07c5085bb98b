"""Cache of the base state: the database with every migration before the change.

Building the base state dominates an audit of a long history, and it is the
same run after run. For the throwaway clusters (``local`` and ``embedded``)
the cache entry is the cluster's data directory, copied while the server is
cleanly stopped, so a warm run starts PostgreSQL straight from it: no initdb,
no migrations. The key covers everything the base state depends on: the
content of every migration file before the change and their order, Django's
version, PostgreSQL's major version, the audited alias and its routers, and
this package's version. Code a RunPython imports from elsewhere is not part of
the key: ``--no-cache`` rebuilds.

Entries are written to a temporary name and renamed into place with their
manifest written last, so a reader never sees half an entry; an entry whose
files do not match its manifest is deleted and rebuilt. Concurrent audits
that build the same entry keep the first one renamed into place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .source import migration_path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FORMAT = 1
#: Entries kept per cache folder (least recently used go first).
KEEP = 6


def default_directory() -> Path:
    env = os.environ.get("MIGRATION_GUARD_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "migration-guard"


@dataclasses.dataclass(frozen=True)
class Entry:
    path: Path
    key: str
    dbname: str
    migrations: int

    @property
    def data(self) -> Path:
        return self.path / "data"


def _tree_stats(root: Path) -> tuple[int, int]:
    files = 0
    size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            files += 1
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


class BaseStateCache:
    def __init__(self, directory: Path | None = None, keep: int = KEEP) -> None:
        self.directory = Path(directory) if directory else default_directory()
        self.keep = keep

    # -- key ---------------------------------------------------------------------
    def key(
        self,
        migrations: Iterable[Any],
        *,
        pg_major: int,
        alias: str,
        extra: Iterable[str] = (),
    ) -> str:
        import django

        digest = hashlib.sha256()
        for part in (
            f"format={FORMAT}",
            f"tool={__version__}",
            f"django={django.get_version()}",
            f"postgres={pg_major}",
            f"alias={alias}",
            *extra,
        ):
            digest.update(part.encode() + b"\0")
        for migration in migrations:
            digest.update(f"{migration.app_label}.{migration.name}".encode() + b"\0")
            path = migration_path(migration)
            try:
                digest.update(path.read_bytes() if path else repr(migration.operations).encode())
            except OSError:
                digest.update(repr(migration.operations).encode())
            digest.update(b"\0")
        return digest.hexdigest()[:32]

    # -- read --------------------------------------------------------------------
    def lookup(self, key: str) -> Entry | None:
        path = self.directory / key
        manifest = path / MANIFEST
        if not manifest.is_file():
            if path.exists():  # entries are renamed into place whole: this one was damaged
                log.warning("cache entry %s has no manifest; rebuilding it", path)
                self.invalidate(key)
            return None
        try:
            meta = json.loads(manifest.read_text())
            files, size = _tree_stats(path / "data")
            if meta.get("format") != FORMAT or (files, size) != (meta["files"], meta["bytes"]):
                raise ValueError(f"files {files}/{size} do not match manifest")
            entry = Entry(path, key, str(meta["dbname"]), int(meta["migrations"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("cache entry %s is damaged (%s); rebuilding it", path, exc)
            self.invalidate(key)
            return None
        with contextlib.suppress(OSError):
            os.utime(manifest)
        return entry

    def invalidate(self, key: str) -> None:
        shutil.rmtree(self.directory / key, ignore_errors=True)

    # -- write -------------------------------------------------------------------
    def store(self, key: str, save_data: Any, *, dbname: str, migrations: int) -> Entry | None:
        """Write an entry; ``save_data(dest)`` copies the data directory to ``dest``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / key
        if (final / MANIFEST).is_file():
            return self.lookup(key)
        # named before it exists, so an interruption at any point leaves nothing behind
        tmp = self.directory / f".{key}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(mode=0o700)
            save_data(tmp / "data")
            files, size = _tree_stats(tmp / "data")
            (tmp / MANIFEST).write_text(
                json.dumps(
                    {
                        "format": FORMAT,
                        "key": key,
                        "dbname": dbname,
                        "migrations": migrations,
                        "files": files,
                        "bytes": size,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "tool": __version__,
                    },
                    indent=2,
                )
            )
            try:
                os.rename(tmp, final)
            except OSError:
                # another audit stored the same entry first
                shutil.rmtree(tmp, ignore_errors=True)
                return self.lookup(key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.prune()
        return Entry(final, key, dbname, migrations)

    def prune(self) -> None:
        entries = []
        for child in self.directory.iterdir():
            manifest = child / MANIFEST
            if child.name.startswith(".") or not manifest.is_file():
                continue
            with contextlib.suppress(OSError):
                entries.append((manifest.stat().st_mtime, child))
        entries.sort(reverse=True)
        for _, child in entries[self.keep :]:
            shutil.rmtree(child, ignore_errors=True)
        # temporary folders of writers that died long ago
        for child in self.directory.glob(".*-*"):
            with contextlib.suppress(OSError):
                if time.time() - child.stat().st_mtime > 3600:
                    shutil.rmtree(child, ignore_errors=True)
