"""The account a throwaway server runs as when the audit runs as root.

PostgreSQL refuses to run as root, and the server is the part of the audit that
runs the merge request's SQL (``COPY ... TO PROGRAM`` runs a shell command as
the server's account). So the account must own nothing else: not ``postgres``,
which owns the machine's real clusters, nor ``nobody``, which other services
share.

As root, the audit therefore uses accounts of its own, ``migration-guard-pg0``,
``migration-guard-pg1``..., system accounts without a home folder or a login
shell, created on first use. Each audit holds one exclusively for its whole
run (an ``flock`` on a root-only lock file), so two audits at once never share
a server account, and whatever a run's server left running under its account
(a daemon started by ``COPY ... TO PROGRAM``) is killed when the account is
taken and when it is given back. ``MIGRATION_GUARD_PG_USER`` names an account
to use instead; it must not be root and must own no home folder.

A transient uid without a passwd entry would own even less, but ``initdb``
refuses to run without one ("could not look up effective user ID").
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..exceptions import ProviderError

log = logging.getLogger(__name__)

ENV_VAR = "MIGRATION_GUARD_PG_USER"
#: Names of our own accounts: the prefix and a slot number.
POOL_PREFIX = "migration-guard-pg"
POOL_SIZE = 32
#: Root-only folder of the lock files (``/run`` is writable by root alone).
LOCK_DIRS = (Path("/run/migration-guard"), Path("/var/run/migration-guard"))
_COMMENT = "django-migration-guard throwaway PostgreSQL"


@dataclasses.dataclass
class ServerAccount:
    """An account the server runs as, held for one run (release it when done)."""

    entry: pwd.struct_passwd
    #: True for an account of our pool, held exclusively: its processes are ours to kill.
    exclusive: bool
    _lock_fd: int | None = None

    @property
    def name(self) -> str:
        return self.entry.pw_name

    @property
    def uid(self) -> int:
        return self.entry.pw_uid

    @property
    def gid(self) -> int:
        return self.entry.pw_gid

    def kill_leftovers(self) -> list[int]:
        """SIGKILL every process of this account and remove the shared memory segments
        it left behind (only for an account held exclusively: all it owns is ours)."""
        if not self.exclusive:
            return []
        killed = kill_processes_of(self.uid)
        remove_segments_of(self.uid)
        return killed

    def release(self) -> None:
        self.kill_leftovers()
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def acquire() -> ServerAccount | None:
    """The account to run the server as: None when we are not root."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        return ServerAccount(_explicit(wanted), exclusive=False)
    account = _from_pool()
    account.kill_leftovers()
    return account


def _explicit(name: str) -> pwd.struct_passwd:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ProviderError(
            f"{ENV_VAR}={name!r}: no such account. Create it, or unset {ENV_VAR} to let the "
            f"audit create accounts of its own ({POOL_PREFIX}N)."
        ) from None
    if entry.pw_uid == 0:
        raise ProviderError(f"{ENV_VAR}={name!r} is root: PostgreSQL refuses to run as root.")
    home = entry.pw_dir
    with contextlib.suppress(OSError):
        st = os.lstat(home)
        if home not in ("/", "") and st.st_uid == entry.pw_uid:
            raise ProviderError(
                f"{ENV_VAR}={name!r} owns {home}: the throwaway server runs the merge "
                "request's SQL as this account (COPY ... TO PROGRAM), so it must own nothing "
                "else. Unset the variable to let the audit create accounts of its own "
                f"({POOL_PREFIX}N), or name an account that owns no files."
            )
    return entry


def lock_dir() -> Path:
    """Our root-only folder for lock files, created when missing; refused when unsafe."""
    last: OSError | None = None
    for folder in LOCK_DIRS:
        if not folder.parent.is_dir():
            continue
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o700)
            st = os.lstat(folder)
        except OSError as exc:
            last = exc
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o077:
            raise ProviderError(
                f"{folder} is not a folder of root's alone (owner uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):o}): remove it; the audit recreates it."
            )
        return folder
    raise ProviderError(f"no folder for the audit's lock files ({LOCK_DIRS[0]}): {last}")


def _open_lock(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _from_pool() -> ServerAccount:
    folder = lock_dir()
    for slot in range(POOL_SIZE):
        fd = _open_lock(folder / f"slot-{slot}.lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue  # another audit holds this one
            raise
        try:
            entry = _ensure_account(f"{POOL_PREFIX}{slot}", folder)
        except BaseException:
            os.close(fd)
            raise
        return ServerAccount(entry, exclusive=True, _lock_fd=fd)
    raise ProviderError(
        f"all {POOL_SIZE} server accounts ({POOL_PREFIX}0..{POOL_SIZE - 1}) are in use by "
        "other audits: wait for one to finish, or set MIGRATION_GUARD_PG_USER."
    )


def _ensure_account(name: str, folder: Path) -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return _checked(pwd.getpwnam(name))
    with _locked(folder / "accounts.lock"):
        with contextlib.suppress(KeyError):
            return _checked(pwd.getpwnam(name))
        _create_account(name)
    try:
        return _checked(pwd.getpwnam(name))
    except KeyError:
        raise ProviderError(f"the account {name} was created but cannot be found") from None


def _checked(entry: pwd.struct_passwd) -> pwd.struct_passwd:
    if entry.pw_uid == 0:
        raise ProviderError(f"the account {entry.pw_name} has uid 0: remove it (userdel).")
    return entry


def _create_account(name: str) -> None:
    nologin = next(
        (p for p in ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false") if os.path.exists(p)),
        "/bin/false",
    )
    useradd = shutil.which("useradd") or _sbin("useradd")
    adduser = shutil.which("adduser") or _sbin("adduser")
    if useradd:
        command = [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            nologin,
            "--comment",
            _COMMENT,
            name,
        ]
    elif adduser:  # BusyBox (Alpine without shadow)
        command = [adduser, "-S", "-D", "-H", "-h", "/nonexistent", "-s", nologin, name]
    else:
        raise ProviderError(
            "running as root, and PostgreSQL refuses to run as root: the audit runs it as an "
            f"account of its own ({name}) but cannot create one (no useradd or adduser). "
            f"Create a system account that owns no files and set {ENV_VAR} to its name."
        )
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, env=_plain_env()
    )
    if result.returncode != 0:
        raise ProviderError(
            f"could not create the server account {name} ({' '.join(command[:1])} exit "
            f"{result.returncode}: {(result.stderr or result.stdout).strip()[:300]}). Create "
            f"a system account that owns no files and set {ENV_VAR} to its name."
        )
    log.info("created the system account %s for throwaway PostgreSQL servers", name)


def _sbin(tool: str) -> str | None:
    for folder in ("/usr/sbin", "/sbin"):
        path = os.path.join(folder, tool)
        if os.access(path, os.X_OK):
            return path
    return None


def _plain_env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "LANG": "C"}


# -- processes -------------------------------------------------------------------------------


def processes_of(uid: int) -> list[int]:
    """Pids of live processes whose real or effective uid is ``uid`` (Linux)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        uids = next((line.split()[1:3] for line in status.splitlines() if line[:4] == "Uid:"), [])
        state = next((line.split()[1] for line in status.splitlines() if line[:6] == "State:"), "")
        if state != "Z" and str(uid) in uids:
            found.append(int(entry.name))
    return found


def kill_processes_of(uid: int, attempts: int = 20) -> list[int]:
    """SIGKILL every process of ``uid`` until none is left (forks included)."""
    if uid == 0 or uid == os.getuid():
        raise ValueError("refusing to kill the processes of root or of ourselves")
    killed: list[int] = []
    for _ in range(attempts):
        pids = processes_of(uid)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    if killed:
        log.debug("killed %d leftover process(es) of uid %d", len(set(killed)), uid)
    return sorted(set(killed))


#: Where POSIX shared memory segments live (Linux).
SHM_DIR = Path("/dev/shm")


def remove_segments_of(uid: int) -> list[str]:
    """Remove the PostgreSQL shared memory segments ``uid`` owns in /dev/shm.

    Our clusters keep theirs in the data directory (``dynamic_shared_memory_type
    = mmap``), but the ``postgres`` that ``initdb`` runs makes POSIX segments, and
    one killed mid-way (an audit interrupted while it starts) leaves them behind.
    Called once the account's processes are gone: the folder is sticky, so nobody
    but the account (or root) can rename or replace what it owns there.
    """
    removed = []
    with contextlib.suppress(OSError), os.scandir(SHM_DIR) as entries:
        for entry in entries:
            if not entry.name.startswith("PostgreSQL."):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if st.st_uid == uid and stat.S_ISREG(st.st_mode):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None when unknown.

    With the pid it identifies one process for good: a pid reused later has
    another start time.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # field 22; the command name (field 2) may hold spaces and parentheses
    fields = text.rsplit(")", 1)[1].split()
    return fields[19] if len(fields) > 19 else None
