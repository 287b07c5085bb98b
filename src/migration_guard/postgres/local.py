"""A throwaway PostgreSQL cluster started from server binaries on this machine.

The cluster lives in a private temporary folder, listens on a Unix socket only
(no TCP port to collide with), runs with durability turned off (it is thrown
away) and autovacuum off (so that traced locks are the migration's own). When
the process runs as root, as CI containers often do, the server runs as an
unprivileged user because ``initdb`` and ``postgres`` refuse root.

The postmaster is our child process: it is told to quit if we die
(``PR_SET_PDEATHSIG``), it is stopped on normal exit, on exceptions and on
SIGINT/SIGTERM, and its folder is removed. Folders left by a process that was
killed outright are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psycopg

from ..exceptions import ProviderError
from ..signals import shielded
from .base import ConnectionInfo, version_text

log = logging.getLogger(__name__)

#: Prefix of every folder we create; the stale-folder sweep only looks at these.
TEMP_PREFIX = "migration-guard-pg-"
_OWNER_FILE = "owner.pid"
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

_RUN_AS_CANDIDATES = ("postgres", "nobody")


def _run_as_user() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("MIGRATION_GUARD_PG_USER")
    names = (wanted,) if wanted else _RUN_AS_CANDIDATES
    for name in names:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_uid != 0:
            return entry
    raise ProviderError(
        "running as root, and PostgreSQL refuses to run as root: no unprivileged account "
        f"to run it as ({', '.join(names)} not found). Create one or set "
        "MIGRATION_GUARD_PG_USER to an existing non-root user."
    )


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


def sweep_stale_dirs(parent: Path | None = None) -> list[Path]:
    """Remove our folders whose owning process is gone (it was killed outright).

    A server still running from such a folder is sent SIGQUIT first; only
    folders named with our prefix and holding our owner file are touched.
    """
    parent = parent or Path(tempfile.gettempdir())
    removed: list[Path] = []
    for path in parent.glob(TEMP_PREFIX + "*"):
        owner = path / _OWNER_FILE
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(pid):
            continue
        pidfile = path / "data" / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pidfile.read_text().splitlines()[0]), signal.SIGQUIT)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _short_tempdir() -> Path:
    base = Path(tempfile.gettempdir())
    if len(str(base)) > _MAX_SOCKET_DIR - 30 and Path("/tmp").is_dir():
        base = Path("/tmp")
    return base


class LocalCluster:
    """A private PostgreSQL cluster in a temporary folder; gone when the block ends."""

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
        self._run_as: pwd.struct_passwd | None = None
        self._bindir_in_use = self.bindir
        self.source = source
        self._settings = {**SERVER_SETTINGS, **(extra_settings or {})}
        self._on_started = on_started
        self._dir: Path | None = None
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

    @property
    def binary_major(self) -> int:
        """Major version of the server binaries (known before starting)."""
        return binary_version(self.bindir)[0]

    @property
    def directory(self) -> Path | None:
        """The private folder (data, socket, log) while running."""
        return self._dir

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> LocalCluster:
        try:
            self._start()
        except OSError as exc:  # a full disk, a folder we may not write...
            where = self._dir.parent if self._dir is not None else _short_tempdir()
            self._cleanup()
            raise ProviderError(
                f"cannot set up a throwaway PostgreSQL cluster in {where}: {exc}."
                + (_NO_SPACE_HINT if exc.errno == errno.ENOSPC else "")
            ) from exc
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    # -- lifecycle --------------------------------------------------------------
    def _start(self) -> None:
        sweep_stale_dirs(_short_tempdir())
        self._run_as = _run_as_user()
        run_as = self._run_as
        with shielded():
            # The folder is registered before anything can interrupt us, so
            # cleanup always knows what to remove.
            self._dir = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=_short_tempdir()))
            (self._dir / _OWNER_FILE).write_text(str(os.getpid()))
        self._bindir_in_use = self.bindir
        if run_as is not None:
            os.chown(self._dir, run_as.pw_uid, run_as.pw_gid)
            if not _traversable_by(self._dir, run_as):
                raise ProviderError(
                    f"PostgreSQL runs as {run_as.pw_name!r} (it refuses root), and that user "
                    f"cannot reach {self._dir.parent}: make the folder searchable "
                    f"(chmod o+x) or point TMPDIR at one it can reach, such as /tmp."
                )
            if not _traversable_by(self.bindir, run_as):
                self._bindir_in_use = self._private_copy_of_binaries(run_as)
        started = time.monotonic()
        data = self._dir / "data"
        if self._data_source is not None:
            self._copy_data_in(self._data_source, data)
        else:
            self._initdb(data)
        self._launch()
        log.debug(
            "%s started in %.2fs in %s", self.description, time.monotonic() - started, self._dir
        )
        if self._on_started:
            self._on_started(self)

    @property
    def _uid(self) -> int | None:
        return self._run_as.pw_uid if self._run_as else None

    @property
    def _gid(self) -> int | None:
        return self._run_as.pw_gid if self._run_as else None

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        env.pop("PGDATA", None)
        return env

    def _initdb(self, data: Path) -> None:
        assert self._dir is not None
        bindir = self._bindir_in_use
        # Its own process group: when we are interrupted, initdb and the postgres it
        # runs (which would go on writing into the folder being removed) are killed
        # together, and a Ctrl-C at the terminal does not reach them behind our back.
        init = subprocess.Popen(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                # small WAL segments: a saved data directory (the base-state cache)
                # copies a few MB of WAL instead of a 16 MB segment
                *(["--wal-segsize=1"] if self.binary_major >= 11 else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=self._env(),
            cwd=self._dir,
            user=self._uid,
            group=self._gid,
            start_new_session=True,
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
                + ("\n" + _NO_SPACE_HINT.strip() if "No space left on device" in output else "")
            )

    def _copy_data_in(self, source: Path, data: Path) -> None:
        """Start from a saved data directory (a cached base state) instead of initdb."""
        shutil.copytree(source, data, symlinks=True)
        data.chmod(0o700)
        if self._run_as is not None:
            for path in [data, *data.rglob("*")]:
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid, follow_symlinks=False)

    def _launch(self) -> None:
        assert self._dir is not None
        data = self._dir / "data"
        logfile = self._dir / "postgres.log"
        args = [str(self._bindir_in_use / "postgres"), "-D", str(data), "-k", str(self._dir)]
        args += ["-p", str(_SOCKET_PORT)]
        for key, value in self._settings.items():
            args += ["-c", f"{key}={value}"]
        with open(logfile, "ab") as out, shielded():
            self._proc = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                cwd=self._dir,
                start_new_session=True,
                preexec_fn=_die_with_parent(),
                user=self._uid,
                group=self._gid,
            )
        info = ConnectionInfo(host=str(self._dir), port=_SOCKET_PORT, user="postgres")
        self._wait_ready(info, logfile)
        self._info = info

    def log_tail(self, lines: int = 10) -> str:
        """The last lines of the server's log ("" when there is none)."""
        if self._dir is None or not (self._dir / "postgres.log").is_file():
            return ""
        text = _tail(self._dir / "postgres.log", lines)
        return "" if text.startswith("(") else text

    def save_data(self, dest: Path) -> None:
        """Copy the data directory to ``dest`` while the server is cleanly stopped.

        The server is stopped (fast shutdown, which checkpoints), the folder
        copied, and the server started again on the same socket. Connections
        must be closed by the caller first.
        """
        if self._dir is None or self._proc is None:
            raise ProviderError("the local cluster is not running")
        with shielded():
            _stop(self._proc)
            self._proc = None
        try:
            shutil.copytree(self._dir / "data", dest, symlinks=True)
        except OSError:  # a full disk: the audit goes on without a cache entry
            self._launch()
            raise
        self._launch()

    def _private_copy_of_binaries(self, run_as: pwd.struct_passwd) -> Path:
        """Copy the server install where ``run_as`` can reach it (root-only folders).

        The copy keeps the install's shape: ``<pkg>/<install>/bin`` next to an
        optional ``<pkg>.libs`` folder, since wheel-built binaries find their
        shared libraries relative to themselves.
        """
        assert self._dir is not None
        install = self.bindir.parent
        package = install.parent
        dest = self._dir / "pg" / package.name / install.name
        shutil.copytree(install, dest, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, self._dir / "pg" / libs.name, symlinks=True)
        for path in [self._dir / "pg", *(self._dir / "pg").rglob("*")]:
            with contextlib.suppress(OSError):
                os.chown(path, run_as.pw_uid, run_as.pw_gid, follow_symlinks=False)
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
            directory, self._dir = self._dir, None
            self._info = None
            if directory is not None:
                _remove(directory)


def _remove(directory: Path, attempts: int = 50) -> None:
    """Remove ``directory``, again if a process that was just killed still wrote into it."""
    for _ in range(attempts):
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            return
        time.sleep(0.1)
    log.warning("could not remove %s", directory)


_NO_SPACE_HINT = (
    " The disk is full: free space there, or point TMPDIR at a folder with a few hundred "
    "MB free (the cluster, its socket and log live in a folder under TMPDIR)."
)


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
