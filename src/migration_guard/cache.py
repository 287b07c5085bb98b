"""Cache of the base state: the database with every migration before the change.

Building the base state dominates an audit of a long history, and it is the
same run after run. For the throwaway clusters (``local`` and ``embedded``)
the cache entry is the cluster's data directory, saved as one archive while
the server is cleanly stopped, so a warm run starts PostgreSQL straight from
it: no initdb,
no migrations. The key covers everything the base state depends on: the
content of every migration file before the change and their order, Django's
version, PostgreSQL's major version, the audited alias and its routers, and
this package's version. Code a RunPython imports from elsewhere is not part of
the key: ``--no-cache`` rebuilds.

Entries are written to a temporary name and renamed into place with their
manifest written last, so a reader never sees half an entry; an entry whose
archive does not match its manifest, or holds a header this package does not
write, is deleted and rebuilt. Concurrent audits
that build the same entry keep the first one renamed into place.

An entry is data, never configuration (``postgres.datadir``): it may hold only
folders and regular files, and a cache folder that another account owns or
can write (or that sits in a folder another account could replace it from) is
not used at all. Temporary folders of writers that died are removed by every
run, cache hits included.
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
import stat
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .source import migration_path

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: The data directory of an entry: one tar archive (2; 1 was a folder of files).
DATA = "data.tar"
FORMAT = 2
#: Entries kept per cache folder (least recently used go first).
KEEP = 6
#: Age after which a temporary entry folder is a dead writer's, in seconds.
STALE_TEMP = 3600


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
        """The data directory, as one archive (``postgres.datadir``)."""
        return self.path / DATA


def _archive_size(path: Path) -> int:
    """Size of the entry's archive; ValueError unless it is a regular file."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path.name} is not a regular file")
    return st.st_size


class UnsafeCacheFolder(ValueError):
    """The cache folder could be written by another account."""


def check_folder(path: Path) -> None:
    """Refuse a cache folder another account owns or could write or replace.

    The folder itself must be ours and writable by nobody else; every folder
    above it must belong to us or root and be writable by nobody else, unless
    it is sticky (like /tmp), where others cannot rename what is ours.
    """
    me = os.geteuid()
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCacheFolder(f"{path} is not a folder")
    if st.st_uid != me:
        raise UnsafeCacheFolder(f"{path} belongs to uid {st.st_uid}, not to us (uid {me})")
    if st.st_mode & 0o022:
        raise UnsafeCacheFolder(
            f"{path} can be written by other accounts (mode {stat.S_IMODE(st.st_mode):o})"
        )
    for parent in path.resolve().parents:
        pst = os.stat(parent)
        if pst.st_uid not in (0, me):
            raise UnsafeCacheFolder(f"{parent} (above it) belongs to uid {pst.st_uid}")
        if pst.st_mode & 0o022 and not pst.st_mode & stat.S_ISVTX:
            raise UnsafeCacheFolder(
                f"{parent} (above it) can be written by other accounts "
                f"(mode {stat.S_IMODE(pst.st_mode):o})"
            )


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

    def usable(self, *, create: bool = False) -> bool:
        """Is the cache folder safe to read and write? (A warning says why not.)"""
        try:
            if create:
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            elif not self.directory.exists():
                return False
            check_folder(self.directory)
        except UnsafeCacheFolder as exc:
            log.warning(
                "not using the base-state cache: %s. Point MIGRATION_GUARD_CACHE_DIR (or the "
                "cache_dir setting) at a folder only this account can write.",
                exc,
            )
            return False
        except OSError as exc:
            log.warning("not using the base-state cache in %s: %s", self.directory, exc)
            return False
        return True

    # -- read --------------------------------------------------------------------
    def lookup(self, key: str) -> Entry | None:
        if not self.usable():
            return None
        self.remove_stale_temporaries()
        path = self.directory / key
        manifest = path / MANIFEST
        if not manifest.is_file():
            if path.exists():  # entries are renamed into place whole: this one was damaged
                log.warning("cache entry %s has no manifest; rebuilding it", path)
                self.invalidate(key)
            return None
        try:
            entry_st = os.lstat(path)
            if entry_st.st_uid != os.geteuid() or entry_st.st_mode & 0o022:
                raise ValueError("it is not a folder of ours alone")
            meta = json.loads(manifest.read_text())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, not {FORMAT}")
            size = _archive_size(path / DATA)
            if size != meta["bytes"]:
                raise ValueError(f"{size} bytes do not match the manifest's {meta['bytes']!r}")
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
        """Write an entry; ``save_data(dest)`` saves the data directory as the archive ``dest``."""
        if not self.usable(create=True):
            return None
        final = self.directory / key
        if (final / MANIFEST).is_file():
            return self.lookup(key)
        # named before it exists, so an interruption at any point leaves nothing behind
        tmp = self.directory / f".{key}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            tmp.mkdir(mode=0o700)
            save_data(tmp / DATA)
            size = _archive_size(tmp / DATA)
            (tmp / MANIFEST).write_text(
                json.dumps(
                    {
                        "format": FORMAT,
                        "key": key,
                        "dbname": dbname,
                        "migrations": migrations,
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
        self.remove_stale_temporaries()

    def remove_stale_temporaries(self) -> None:
        """Temporary entry folders of writers that died long ago."""
        with contextlib.suppress(OSError):
            for child in self.directory.glob(".*-*"):
                with contextlib.suppress(OSError):
                    if time.time() - os.lstat(child).st_mtime > STALE_TEMP:
                        shutil.rmtree(child, ignore_errors=True)
