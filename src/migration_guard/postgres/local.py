"""A throwaway PostgreSQL cluster started from server binaries on this machine.

The cluster lives in a private temporary folder, listens on a Unix socket only
(no TCP port to collide with), runs with durability turned off (it is thrown
away) and autovacuum off (so that traced locks are the migration's own). When
the process runs as root, as CI containers often do, the server runs as an
account of its own (``account``) because ``initdb`` and ``postgres`` refuse
root, and root never works by path inside the folder that account can write.

The postmaster is our child process: it is told to quit if we die
(``PR_SET_PDEATHSIG``), it is stopped on normal exit, on exceptions and on
SIGINT/SIGTERM, and its folder is removed. Folders left by a process that was
killed outright are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import dataclasses
import errno
import functools
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from subprocess import PIPE
from typing import Any

import psycopg

from ..exceptions import ProviderError
from ..signals import shielded
from . import account, datadir
from .base import ConnectionInfo, version_text

log = logging.getLogger(__name__)

#: Prefix of every folder we create; the stale-folder sweep only looks at these.
TEMP_PREFIX = "migration-guard-pg-"
_OWNER_FILE = "owner.pid"
#: "pid start-time" of the postmaster we started, to prove it is ours before signalling it.
_SERVER_FILE = "server.pid"
#: The subfolder that belongs to the server's account: data directory and socket.
_CLUSTER = "c"
_SOCKET_PORT = 5432
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 15.0
#: Unix socket paths are limited to about 107 bytes.
_MAX_SOCKET_DIR = 80

SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    "jit": "off",
    "max_connections": "40",
    "max_wal_size": "1GB",
    "min_wal_size": "2MB",
    "checkpoint_timeout": "30min",
    "log_min_messages": "warning",
    "TimeZone": "UTC",
    # What initdb writes into the configuration file, given here instead: a cluster
    # started from a saved data directory gets our empty file, and has to behave the
    # same as one initdb made (full-text search's default configuration was "simple"
    # in one and "english" in the other).
    "default_text_search_config": "pg_catalog.english",
    "DateStyle": "ISO, MDY",
    "lc_messages": "C",
    "lc_monetary": "C",
    "lc_numeric": "C",
    "lc_time": "C",
    "log_timezone": "UTC",
    # Dynamic shared memory as files of the data directory, not /dev/shm segments: they
    # go with the folder even when the server is killed outright.
    "dynamic_shared_memory_type": "mmap",
}

#: Folders where distributions and installers put PostgreSQL, newest first per glob.
_USUAL_BINDIRS = (
    "/usr/lib/postgresql/*/bin",
    "/usr/pgsql-*/bin",
    "/usr/local/pgsql/bin",
    "/opt/homebrew/opt/postgresql@*/bin",
    "/usr/local/opt/postgresql@*/bin",
    "/opt/homebrew/opt/postgresql/bin",
    "/usr/local/opt/postgresql/bin",
    "/Applications/Postgres.app/Contents/Versions/*/bin",
    "/opt/local/lib/postgresql*/bin",
    "/usr/local/bin",
    "/usr/bin",
)


def _is_bindir(path: Path) -> bool:
    return all(os.access(path / exe, os.X_OK) for exe in ("initdb", "postgres"))


def _version_key(path: Path) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", str(path))
    return tuple(int(n) for n in numbers) or (0,)


def binary_version(bindir: Path) -> tuple[int, int]:
    """(major, minor) from ``postgres --version``."""
    try:
        out = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ProviderError(f"{bindir / 'postgres'} --version failed: {exc}") from exc
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        raise ProviderError(f"cannot read the version of {bindir / 'postgres'}: {out.strip()!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def candidate_bindirs(explicit: str | None = None) -> list[Path]:
    """Folders holding ``initdb`` and ``postgres``, in the order they are tried.

    An explicit folder (setting ``postgres_bindir`` or ``MIGRATION_GUARD_PG_BINDIR``)
    wins; then ``initdb`` on PATH; then ``pg_config --bindir``; then the usual
    install folders, newest major version first.
    """
    found: list[Path] = []

    def add(path: Path | str | None) -> None:
        if not path:
            return
        p = Path(path)
        with contextlib.suppress(OSError):
            p = p.resolve()
        if p not in found and _is_bindir(p):
            found.append(p)

    explicit = explicit or os.environ.get("MIGRATION_GUARD_PG_BINDIR")
    if explicit:
        if not _is_bindir(Path(explicit)):
            raise ProviderError(
                f"postgres_bindir {explicit!r} does not contain initdb and postgres; "
                "point it at the bin folder of a PostgreSQL server install."
            )
        add(explicit)
        return found
    initdb = shutil.which("initdb")
    if initdb:
        add(Path(initdb).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
            add(out)
    for pattern in _USUAL_BINDIRS:
        for match in sorted(glob.glob(pattern), key=lambda p: _version_key(Path(p)), reverse=True):
            add(match)
    return found


def pick_bindir(explicit: str | None = None, prefer_major: int | None = None) -> Path | None:
    """The bin folder to use: the preferred major version when installed, else the first."""
    dirs = candidate_bindirs(explicit)
    if not dirs:
        return None
    if prefer_major is not None:
        for d in dirs:
            with contextlib.suppress(ProviderError):
                if binary_version(d)[0] == prefer_major:
                    return d
    return dirs[0]


# --- running as root ----------------------------------------------------------------


def _traversable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` reach and execute files under ``path`` (every parent searchable)?"""
    groups = {g for g in os.getgrouplist(user.pw_name, user.pw_gid)}
    current = path.resolve()
    for part in [current, *current.parents]:
        try:
            st = part.stat()
        except OSError:
            return False
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & 0o100
        elif st.st_gid in groups:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


# --- dying with the parent ------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGQUIT when we die (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)

    def preexec() -> None:  # runs in the child after setuid, before exec
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT, 0, 0, 0)

    return preexec


# --- stale folders --------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_own_file(path: Path) -> str | None:
    """The text of ``path`` when it is a regular file of ours (never through a link)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_size > 4096:
            return None
        return handle.read().decode("ascii", "replace")


def _is_our_folder(path: Path) -> bool:
    """A folder we own and nobody else can write (so its content is ours)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _pid_namespace() -> str:
    """Our pid namespace ("-" when unknown): a pid means nothing outside its namespace."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return "-"


def sweep_stale_dirs(parent: Path | None = None) -> list[Path]:
    """Remove our folders whose owning process is gone (it was killed outright).

    ``parent`` None: every folder a cluster may be in (:func:`cluster_parents`).
    Only folders named with our prefix, owned by us, writable by nobody else
    and holding our owner file are touched, and only when the owner's pid was
    recorded in our pid namespace (a folder shared with another container, as
    /dev/shm is with ``--ipc=host``, may belong to a live process we cannot
    see). A server still running from such a folder is sent SIGQUIT only when
    it is proven to be the one we started there: the pid and the kernel's
    start time we recorded (in that folder, which only we can write) still
    match a live process.
    """
    removed: list[Path] = []
    for folder in [parent] if parent is not None else cluster_parents():
        removed += _sweep(folder)
    return removed


def _sweep(parent: Path) -> list[Path]:
    removed: list[Path] = []
    for path in parent.glob(TEMP_PREFIX + "*"):
        if not _is_our_folder(path):
            continue
        owner = (_read_own_file(path / _OWNER_FILE) or "").split()
        try:
            pid = int(owner[0])
        except (IndexError, ValueError):
            continue
        if len(owner) > 1 and owner[1] != _pid_namespace():
            continue
        if _pid_alive(pid):
            continue
        _stop_recorded_server(path)
        _remove(path)
        removed.append(path)
    return removed


def _stop_recorded_server(folder: Path) -> None:
    recorded = (_read_own_file(folder / _SERVER_FILE) or "").split()
    if len(recorded) != 2 or not recorded[0].isdigit():
        return
    pid = int(recorded[0])
    started = account.start_time(pid)
    if started is None or started != recorded[1]:
        return  # gone, or the pid now belongs to another process
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 5
    while account.start_time(pid) == started and time.monotonic() < deadline:
        time.sleep(0.05)


# --- where the cluster lives -------------------------------------------------------------

#: Names the folder throwaway clusters go in, before TMPDIR and the memory filesystem.
CLUSTER_DIR_VARIABLE = "MIGRATION_GUARD_CLUSTER_DIR"
#: The memory filesystem tried when neither that nor TMPDIR is set.
MEMORY_DIR = Path("/dev/shm")
#: Least free room on the memory filesystem for a cluster to go there. Docker gives a
#: container a 64 MB /dev/shm: too small (the data directory of an audit is 40-60 MB
#: and its WAL grows while migrations run), so the temporary folder is used there.
MEMORY_FLOOR = 512 * 1024 * 1024
#: ... and at least this many times the size of the cached data directory restored.
MEMORY_FACTOR = 3
_TMPDIR_VARIABLES = ("TMPDIR", "TEMP", "TMP")  # the ones tempfile.gettempdir() reads


@dataclasses.dataclass(frozen=True)
class ClusterParent:
    """The folder a throwaway cluster's folder is created in, and why it was chosen."""

    path: Path
    #: How it was chosen, for messages: "(TMPDIR)", "(a memory filesystem)"...
    reason: str

    def __str__(self) -> str:
        return f"{self.path} ({self.reason})"


def _short(base: Path) -> Path:
    """``base``, or /tmp when ``base`` is too long for the path of a Unix socket in it."""
    if len(str(base)) > _MAX_SOCKET_DIR - 30 and Path("/tmp").is_dir():
        return Path("/tmp")
    return base


def _temp_parent() -> ClusterParent:
    explicit = any(os.environ.get(name) for name in _TMPDIR_VARIABLES)
    base = Path(tempfile.gettempdir())
    path = _short(base)
    if path != base:
        return ClusterParent(path, f"{base} is too long for a socket path")
    return ClusterParent(path, "TMPDIR" if explicit else "the temporary folder")


def _mount_type(path: Path) -> str | None:
    """The filesystem type of the mount ``path`` is on (None when unknown: no /proc)."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
    except OSError:
        return None
    best, kind = "", None
    target = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        # spaces, tabs, newlines and backslashes in mount points are octal escapes
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):  # the last of stacked mounts wins
            best, kind = point, fields[2]
    return kind


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def memory_dir_unusable(
    path: Path,
    needed: int = 0,
    run_as: pwd.struct_passwd | None = None,
    floor: int = MEMORY_FLOOR,
) -> str | None:
    """Why throwaway clusters should not go in ``path``; None when it will do.

    It must be a folder on a tmpfs, owned by root or us, that we can write and
    the server's account (``run_as``) can pass through; writable by others only
    with the sticky bit (like /tmp, so nobody else can rename or remove our
    folder); with ``floor`` bytes free and three times ``needed`` (a cached data
    directory to restore).
    """
    try:
        resolved = path.resolve(strict=True)
        st = os.stat(resolved)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a folder"
    kind = _mount_type(resolved)
    if kind != "tmpfs":
        return f"{path} is not a tmpfs ({kind or 'unknown filesystem'})"
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} belongs to uid {st.st_uid}"
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        return f"{path} is writable by others and not sticky"
    if not os.access(resolved, os.W_OK | os.X_OK):
        return f"{path} is not writable by us"
    if run_as is not None and not _traversable_by(resolved, run_as):
        return f"{run_as.pw_name} cannot reach {path}"
    try:
        free = _free_bytes(resolved)
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    wanted = max(floor, MEMORY_FACTOR * needed)
    if free < wanted:
        return f"{path} has {free // 2**20} MB free, fewer than {wanted // 2**20} MB"
    return None


def cluster_parent(needed: int = 0, run_as: pwd.struct_passwd | None = None) -> ClusterParent:
    """The folder the throwaway cluster's folder goes in.

    ``MIGRATION_GUARD_CLUSTER_DIR`` when set; else TMPDIR when set (or TEMP,
    TMP: what :func:`tempfile.gettempdir` reads); else the memory filesystem
    (/dev/shm) when :func:`memory_dir_unusable` finds nothing against it
    (``needed``: bytes of the cached data directory to restore; ``run_as``: the
    server's account); else the temporary folder. A folder too long for a Unix
    socket path in it is replaced by /tmp, as before.
    """
    override = os.environ.get(CLUSTER_DIR_VARIABLE)
    if override:
        path = _short(Path(override))
        why = CLUSTER_DIR_VARIABLE if path == Path(override) else f"{override} is too long"
        return ClusterParent(path, why)
    temp = _temp_parent()
    if any(os.environ.get(name) for name in _TMPDIR_VARIABLES):
        return temp
    why_not = memory_dir_unusable(MEMORY_DIR, needed, run_as)
    if why_not is None:
        return ClusterParent(MEMORY_DIR, "a memory filesystem")
    log.debug("throwaway cluster not in memory: %s", why_not)
    return temp


def cluster_parents() -> list[Path]:
    """Every folder a cluster's folder may be in: the ones the stale-folder sweep visits."""
    found: list[Path] = []
    for parent in (cluster_parent().path, MEMORY_DIR, _temp_parent().path):
        if parent not in found and parent.is_dir():
            found.append(parent)
    return found


def _forced_settings(major: int) -> dict[str, str]:
    """Settings that could run a command or load code, forced off on the command line.

    A restored data directory gets our configuration files anyway; these hold
    even if one slipped through.
    """
    settings = dict(_LOCKED_DOWN)
    if major >= 12:
        settings.update(restore_command="", archive_cleanup_command="", recovery_end_command="")
    if major >= 15:
        settings["archive_library"] = ""
    return settings


_LOCKED_DOWN: dict[str, str] = {
    "archive_mode": "off",
    "archive_command": "",
    "shared_preload_libraries": "",
    "session_preload_libraries": "",
    "local_preload_libraries": "",
    "dynamic_library_path": "$libdir",
    "ssl": "off",
    "ssl_passphrase_command": "",
    "logging_collector": "off",
    "log_destination": "stderr",
    "external_pid_file": "",
    "unix_socket_permissions": "0700",
}

#: Variables the server, initdb and tar get: nothing else of ours (no CI token).
_KEPT_VARIABLES = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH")


def server_environment() -> dict[str, str]:
    """The scrubbed environment of every process that runs as the server's account."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }
    for name in _KEPT_VARIABLES:
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


class LocalCluster:
    """A private PostgreSQL cluster in a temporary folder; gone when the block ends.

    The folder (:attr:`directory`) is ours alone; the cluster proper (data
    directory and socket) lives in its subfolder ``c``, which belongs to the
    server's account. As root we never open, copy, chmod or chown a path
    inside ``c``: the server's account starts ``initdb``, ``postgres`` and the
    ``tar`` that copies data in and out, and the log is a file of ours that
    the server writes through an inherited descriptor.
    """

    def __init__(
        self,
        bindir: Path,
        *,
        source: str = "local",
        extra_settings: dict[str, str] | None = None,
        on_started: Callable[[LocalCluster], None] | None = None,
        data_source: Path | None = None,
    ) -> None:
        self.bindir = Path(bindir)
        self._data_source = data_source
        self._account: account.ServerAccount | None = None
        self._bindir_in_use = self.bindir
        self.source = source
        self._settings = {**SERVER_SETTINGS, **(extra_settings or {})}
        self._on_started = on_started
        #: Called right after a fresh initdb, before the server starts, with a function
        #: that copies the new data directory (as :meth:`save_data` does) to a folder of
        #: ours: a cache keeps it so later clusters of these binaries skip initdb.
        self.after_initdb: Callable[[Callable[[Path], None]], None] | None = None
        self._dir: Path | None = None
        self._parent: ClusterParent | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._info: ConnectionInfo | None = None
        self._version: int | None = None

    # -- protocol ---------------------------------------------------------------
    @property
    def info(self) -> ConnectionInfo:
        if self._info is None:
            raise ProviderError("the local cluster is not running; use it inside a `with` block")
        return self._info

    @property
    def server_version(self) -> int:
        if self._version is None:
            raise ProviderError("the local cluster is not running")
        return self._version

    @property
    def description(self) -> str:
        version = version_text(self._version) if self._version else "?"
        return f"PostgreSQL {version} ({self.source}: throwaway cluster from {self.bindir})"

    @functools.cached_property
    def binaries_version(self) -> tuple[int, int]:
        """(major, minor) of the server binaries (known before starting; asked once)."""
        return binary_version(self.bindir)

    @property
    def binary_major(self) -> int:
        """Major version of the server binaries (known before starting)."""
        return self.binaries_version[0]

    @property
    def directory(self) -> Path | None:
        """The private folder (cluster, socket, log) while running."""
        return self._dir

    @property
    def run_as(self) -> str | None:
        """The account the server runs as (None: ours)."""
        return self._account.name if self._account else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def parent(self) -> ClusterParent:
        """The folder the cluster's folder is (or would be) in, and why."""
        return self._parent or cluster_parent()

    def no_space_advice(self) -> str:
        """What to do when the cluster's filesystem is full, naming it."""
        return _no_space_hint(self.parent).strip()

    def __enter__(self) -> LocalCluster:
        try:
            self._start()
        except OSError as exc:  # a full disk, a folder we may not write...
            where = self.parent
            self._cleanup()
            raise ProviderError(
                f"cannot set up a throwaway PostgreSQL cluster in {where.path}: {exc}."
                + (_no_space_hint(where) if exc.errno == errno.ENOSPC else "")
            ) from exc
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    # -- lifecycle --------------------------------------------------------------
    @property
    def _cluster(self) -> Path:
        assert self._dir is not None
        return self._dir / _CLUSTER

    def _start(self) -> None:
        sweep_stale_dirs()
        needed = _saved_bytes(self._data_source) if self._data_source is not None else 0
        with shielded():
            # Registered before anything can interrupt us, so cleanup always knows
            # what to give back and what to remove.
            self._account = account.acquire()
            entry = self._account.entry if self._account is not None else None
            self._parent = cluster_parent(needed, entry)
            self._dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=self._parent.path))
            (self._dir / _OWNER_FILE).write_text(f"{os.getpid()} {_pid_namespace()}\n")
        run_as = self._account
        self._bindir_in_use = self.bindir
        os.mkdir(self._cluster, 0o700)
        if run_as is not None:
            # Ours alone (root's); the server's account may only pass through it.
            os.chmod(self._dir, 0o711)
            os.chown(self._cluster, run_as.uid, run_as.gid)
            if not _traversable_by(self._dir, run_as.entry):
                raise ProviderError(
                    f"PostgreSQL runs as {run_as.name!r} (it refuses root), and that user "
                    f"cannot reach {self._dir.parent}: make the folder searchable "
                    f"(chmod o+x) or point {CLUSTER_DIR_VARIABLE} or TMPDIR at one it can "
                    "reach, such as /tmp."
                )
            if not _traversable_by(self.bindir, run_as.entry):
                self._bindir_in_use = self._private_copy_of_binaries()
        started = time.monotonic()
        data = self._cluster / "data"
        if self._data_source is not None:
            self._copy_data_in(self._data_source)
        else:
            self._initdb(data)
            if self.after_initdb is not None:
                self.after_initdb(self._read_data)
        self._launch()
        log.debug(
            "%s started in %.2fs in %s", self.description, time.monotonic() - started, self._dir
        )
        if self._on_started:
            self._on_started(self)

    def _as_server(self) -> dict[str, Any]:
        """``subprocess`` arguments that run a program as the server's account."""
        kwargs: dict[str, Any] = {
            "env": server_environment(),
            "cwd": self._cluster,
            "umask": 0o077,
        }
        if self._account is not None:
            kwargs.update(user=self._account.uid, group=self._account.gid, extra_groups=[])
        return kwargs

    @property
    def initdb_options(self) -> list[str]:
        """What ``initdb`` is given besides the folder (part of a fresh cluster's cache key)."""
        return [
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            # small WAL segments: a saved data directory (the base-state cache)
            # copies a few MB of WAL instead of a 16 MB segment
            *(["--wal-segsize=1"] if self.binary_major >= 11 else []),
        ]

    @property
    def binaries_identity(self) -> str:
        """The server binaries in use, as a cache key part: folder, version, build."""
        st = os.stat(self.bindir / "postgres")
        major, minor = self.binaries_version
        return f"{self.bindir.resolve()}|{major}.{minor}|{st.st_size}|{st.st_mtime_ns}"

    def _initdb(self, data: Path) -> None:
        assert self._dir is not None
        bindir = self._bindir_in_use
        # Its own process group: when we are interrupted, initdb and the postgres it
        # runs (which would go on writing into the folder being removed) are killed
        # together, and a Ctrl-C at the terminal does not reach them behind our back.
        init = subprocess.Popen(
            [str(bindir / "initdb"), "-D", str(data), *self.initdb_options],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            **self._as_server(),
        )
        try:
            stdout, stderr = init.communicate()
        except BaseException:
            with shielded():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(init.pid, signal.SIGKILL)
                init.wait()
            raise
        if init.returncode != 0:
            output = (stderr or stdout).strip()
            raise ProviderError(
                f"initdb failed (exit {init.returncode}) with {bindir / 'initdb'}:\n{output}"
                + ("\n" + self.no_space_advice() if "No space left on device" in output else "")
            )

    @contextlib.contextmanager
    def _tar(
        self, what: str, *args: str, stdin: Any = None, stdout: Any = None
    ) -> Iterator[subprocess.Popen[bytes]]:
        """``tar args`` as the server's account; its errors summed up as ``what`` failed."""
        tar = shutil.which("tar") or "/bin/tar"
        proc = subprocess.Popen(
            [tar, *args],
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **self._as_server(),
        )
        # Its errors are read as they come (a full disk gives one per file, and no file
        # could hold them there), keeping the first 64 kB.
        errors = bytearray()

        def drain() -> None:
            assert proc.stderr is not None
            while chunk := proc.stderr.read(8192):
                if len(errors) < 1 << 16:
                    errors.extend(chunk)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            yield proc
        except BaseException:
            with shielded():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                reader.join(5)
            raise
        code = proc.wait()
        reader.join(30)
        if code != 0:
            text = errors.decode("utf-8", "replace")
            raise ProviderError(f"{what} failed (tar exit {code}): {_summary(text, self.parent)}")

    def _copy_data_in(self, source: Path) -> None:
        """Start from a saved data directory (a cached base state) instead of initdb.

        We read the entry (an archive in a folder of ours), checking every
        header, and stream it; ``tar`` running as the server's account writes
        it into the cluster folder. Configuration and signal files of the entry
        never arrive: ours replace them.
        """
        what = f"restoring the cached base state into {self._dir}"
        try:
            with self._tar(what, "-x", "--no-same-owner", "-f", "-", "-C", ".", stdin=PIPE) as tar:
                assert tar.stdin is not None
                try:
                    datadir.send_archive(source, tar.stdin)  # type: ignore[arg-type]
                except BrokenPipeError:
                    pass  # tar stopped (a full disk): its own message says why
                finally:
                    with contextlib.suppress(BrokenPipeError):
                        tar.stdin.close()
        except datadir.UnsafeEntry as exc:
            raise ProviderError(f"the cached base state in {source} is unusable: {exc}") from exc

    def _launch(self) -> None:
        assert self._dir is not None
        data = self._cluster / "data"
        logfile = self._dir / "postgres.log"
        args = [str(self._bindir_in_use / "postgres"), "-D", str(data), "-k", str(self._cluster)]
        args += ["-p", str(_SOCKET_PORT)]
        settings = {**self._settings, **_forced_settings(self.binary_major)}
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        # The log is a file of ours, in our folder: the server writes it through the
        # descriptor it inherits and cannot make us write anywhere else.
        fd = os.open(logfile, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "ab") as out, shielded():
            self._proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                **self._as_server(),
            )
            started = account.start_time(self._proc.pid)
            if started is not None:
                (self._dir / _SERVER_FILE).write_text(f"{self._proc.pid} {started}\n")
        info = ConnectionInfo(host=str(self._cluster), port=_SOCKET_PORT, user="postgres")
        self._wait_ready(info, logfile)
        self._info = info

    def log_tail(self, lines: int = 10) -> str:
        """The last lines of the server's log ("" when there is none)."""
        if self._dir is None or not (self._dir / "postgres.log").is_file():
            return ""
        text = _tail(self._dir / "postgres.log", lines)
        return "" if text.startswith("(") else text

    def save_data(self, dest: Path) -> None:
        """Save the data directory as the archive ``dest`` while the server is cleanly stopped.

        The server is stopped (fast shutdown, which checkpoints), the folder
        copied, and the server started again on the same socket. Connections
        must be closed by the caller first. ``tar`` running as the server's
        account reads the data directory; we write only its folders and
        regular files into ``dest`` (whose folder must be ours), with headers
        of ours, leaving configuration and signal files out.
        """
        if self._dir is None or self._proc is None:
            raise ProviderError("the local cluster is not running")
        with shielded():
            _stop(self._proc)
            self._proc = None
        try:
            self._read_data(dest)
        except OSError:  # a full disk, an unsafe entry: the audit goes on without it
            self._launch()
            raise
        self._launch()

    def _read_data(self, dest: Path) -> None:
        """Copy the data directory of the stopped server to ``dest`` (see :meth:`save_data`).

        Raises OSError when it cannot be copied: a full disk, or something in it
        that is not a folder or a regular file (the audit goes on without a cache entry).
        """
        try:
            what = "reading the data directory for the cache"
            with self._tar(what, "-c", "-f", "-", "-C", ".", "data", stdout=PIPE) as tar:
                assert tar.stdout is not None
                datadir.write_archive(tar.stdout, dest)  # type: ignore[arg-type]
        except (datadir.UnsafeEntry, tarfile.TarError) as exc:
            raise OSError(f"the data directory cannot be cached: {exc}") from exc
        except ProviderError as exc:
            raise OSError(str(exc)) from exc

    def _private_copy_of_binaries(self) -> Path:
        """Copy the server install where the server's account can reach it.

        The copy is ours (root's), readable by all and writable by nobody else,
        in our folder. It keeps the install's shape: ``<pkg>/<install>/bin``
        next to an optional ``<pkg>.libs`` folder, since wheel-built binaries
        find their shared libraries relative to themselves.
        """
        assert self._dir is not None
        install = self.bindir.parent
        package = install.parent
        root = self._dir / "pg"
        dest = root / package.name / install.name
        shutil.copytree(install, dest, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, root / libs.name, symlinks=True)
        for path in [root, *root.rglob("*")]:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode) & ~0o022
            readable = mode | 0o444 | (0o111 if stat.S_ISDIR(st.st_mode) or mode & 0o100 else 0)
            os.chmod(path, readable)
        return dest / self.bindir.name

    def _wait_ready(self, info: ConnectionInfo, logfile: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + _START_TIMEOUT
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ProviderError(
                    f"PostgreSQL from {self.bindir} exited during start-up "
                    f"(code {self._proc.returncode}):\n{_tail(logfile)}"
                )
            try:
                with psycopg.connect(**info.kwargs(), connect_timeout=2) as conn:
                    self._version = int(conn.info.server_version)
                return
            except psycopg.OperationalError as exc:
                last_error = exc
                time.sleep(0.02)
        raise ProviderError(
            f"PostgreSQL from {self.bindir} did not accept connections within "
            f"{_START_TIMEOUT:.0f}s: {last_error}\n{_tail(logfile)}"
        )

    def _cleanup(self) -> None:
        with shielded():
            proc, self._proc = self._proc, None
            if proc is not None and proc.poll() is None:
                # Its folder goes next: no checkpoint needed, and a server stuck in
                # crash recovery (a full disk) would not honour a fast shutdown quickly.
                _stop(proc, immediate=True)
            held, self._account = self._account, None
            if held is not None:
                held.kill_leftovers()  # nothing of the server's account writes there any more
            directory, self._dir = self._dir, None
            self._parent = None
            self._info = None
            if directory is not None:
                _remove(directory)
            if held is not None:
                held.release()


def _remove(directory: Path, attempts: int = 50) -> None:
    """Remove ``directory``, again if a process that was just killed still wrote into it.

    ``shutil.rmtree`` works through directory descriptors here and never
    follows a link planted in the folder (``rmtree.avoids_symlink_attacks``).
    """
    for _ in range(attempts):
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            return
        time.sleep(0.1)
    log.warning("could not remove %s", directory)


def _no_space_hint(parent: ClusterParent) -> str:
    return (
        f" The disk is full: the cluster, its socket and log live in a folder under "
        f"{parent}. Free space there, or point {CLUSTER_DIR_VARIABLE} (or TMPDIR) at a "
        "folder with a few hundred MB free."
    )


def _saved_bytes(archive: Path) -> int:
    """Size of a saved data directory (0 when it cannot be read)."""
    try:
        return os.lstat(archive).st_size
    except OSError:
        return 0


def _summary(text: str, parent: ClusterParent) -> str:
    """The first line of a tool's error output, how many more, and a hint for a full disk."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no message)"
    full = [line for line in lines if "No space left on device" in line]
    first = (full or lines)[0][:300]
    more = f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else ""
    hint = _no_space_hint(parent) if full else ""
    return f"{first}{more}.{hint}"


def _stop(proc: subprocess.Popen[bytes], *, immediate: bool = False) -> None:
    """Fast shutdown (unless ``immediate``), then immediate shutdown, then kill."""
    steps = [(signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)]
    for sig, wait in steps[1:] if immediate else steps:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no server log)"
    return "\n".join(text[-lines:]) or "(empty server log)"


def local_cluster(
    explicit_bindir: str | None = None, prefer_major: int | None = None
) -> LocalCluster | None:
    """A cluster from installed binaries, or None when none are installed."""
    bindir = pick_bindir(explicit_bindir, prefer_major)
    return LocalCluster(bindir, source="local") if bindir else None


def describe_search(explicit: str | None = None) -> Iterable[str]:
    """Where the search for binaries looked (for error messages)."""
    if explicit:
        yield explicit
    yield "PATH (initdb)"
    yield "pg_config --bindir"
    yield from _USUAL_BINDIRS
