"""A throwaway Django project run through the real ``manage.py migration_audit``.

The reliability tests (``tests/test_reliability_*.py``) run the command as a
user does, in a subprocess, against a project folder of their own: its own
settings (``DATABASES`` read from ``DATABASE_URL``, like the sample project),
one app (``inv``) whose migrations a test writes, a private ``TMPDIR`` and a
private cache folder, so that what an audit leaves behind can be checked:

* scratch databases: names on the server that start with ``migration_guard_``
  and carry the audit process's pid (``postgres.scratch.new_name``);
* throwaway clusters: ``migration-guard-pg-*`` folders in the private TMPDIR
  and ``postgres`` processes started from them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from migration_guard.postgres.base import ConnectionInfo
from migration_guard.postgres.local import TEMP_PREFIX
from migration_guard.postgres.scratch import PREFIX

SETTINGS = '''\
"""Settings of a throwaway project for the reliability tests."""

import os
from urllib.parse import parse_qs, unquote, urlsplit

SECRET_KEY = "reliability-tests-only"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "migration_guard", {apps}]


def _database(url):
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return {{
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": unquote(parts.hostname or "") or query.get("host", [""])[0],
        "PORT": str(parts.port or query.get("port", [""])[0]),
    }}


# Never connected to by the audit (it makes its own scratch database), except by
# --unapplied, which reads django_migrations there.
DATABASES = {{
    "default": _database(os.environ.get("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none"))
}}
MIGRATION_GUARD = {guard}
'''

MANAGE = """\
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""

MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
{attributes}
    dependencies = {dependencies!r}

    operations = [
{operations}
    ]
"""

CREATE_ITEM = (
    "migrations.CreateModel('Item', [('id', models.BigAutoField(primary_key=True)), "
    "('code', models.CharField(max_length=20, null=True))])"
)


def url_of(info: ConnectionInfo) -> str:
    """A ``postgresql://`` URL for ``info`` (the Unix socket folder as ``?host=``)."""
    auth = quote(info.user, safe="")
    if info.password is not None:
        auth += ":" + quote(info.password, safe="")
    if info.host.startswith("/"):
        return f"postgresql://{auth}@/{info.dbname}?host={quote(info.host)}&port={info.port}"
    return f"postgresql://{auth}@{info.host}:{info.port}/{info.dbname}"


@dataclasses.dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    pid: int

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A project folder with one app, ``inv``, whose migrations tests write."""

    def __init__(self, root: Path, *, apps: Sequence[str] = ("inv",), guard: str = "{}") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "settings.py").write_text(
            SETTINGS.format(apps=", ".join(repr(a) for a in apps), guard=guard)
        )
        (root / "manage.py").write_text(MANAGE)
        for app in apps:
            (root / app / "migrations").mkdir(parents=True, exist_ok=True)
            (root / app / "__init__.py").write_text("")
            (root / app / "models.py").write_text("")
            (root / app / "migrations" / "__init__.py").write_text("")
        # Short: the Unix socket of a throwaway cluster lives in it (about 107 bytes at most).
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mgr-", dir="/tmp"))
        self.tmpdir.chmod(0o755)  # as root, the server runs as another user: it must get in
        self.cache = root / "cache"

    def migration(
        self,
        name: str,
        operations: Sequence[str] = (),
        *,
        app: str = "inv",
        after: Sequence[str] | None = None,
        attributes: str = "",
        text: str | bytes | None = None,
    ) -> Path:
        """Write ``app/migrations/name.py``; depends on the previous one unless ``after``."""
        folder = self.root / app / "migrations"
        path = folder / f"{name}.py"
        if text is None:
            if after is None:
                before = sorted(p.stem for p in folder.glob("[0-9]*.py") if p.stem < name)
                after = before[-1:]
            ops = "\n".join(
                textwrap.indent(textwrap.dedent(op).strip(), " " * 8) + "," for op in operations
            )
            text = MIGRATION.format(
                attributes=textwrap.indent(textwrap.dedent(attributes).strip(), "    ")
                or "    pass",
                dependencies=[(app, a) for a in after],
                operations=ops,
            ).replace("\n    pass\n    dependencies", "\n    dependencies")
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        environ = {**os.environ}
        for key in (
            "MIGRATION_GUARD_DATABASE_URL",
            "MIGRATION_GUARD_STATS_URL",
            "DJANGO_SETTINGS_MODULE",  # pytest-django sets it for this process
            "GITHUB_ACTIONS",
            "DATABASE_URL",
        ):
            environ.pop(key, None)
        environ.update(
            TMPDIR=str(self.tmpdir),
            MIGRATION_GUARD_CACHE_DIR=str(self.cache),
            PYTHONDONTWRITEBYTECODE="1",
        )
        environ.update(extra)
        return environ

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "manage.py", "migration_audit", *args]

    def start(self, *args: str, prefix: Sequence[str] = (), **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*prefix, *self.command(*args)],
            cwd=self.root,
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, as a command run from a shell
        )

    def run(
        self, *args: str, timeout: float = 240, prefix: Sequence[str] = (), **env: str
    ) -> Result:
        child = self.start(*args, prefix=prefix, **env)
        try:
            out, err = child.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate()
            raise AssertionError(f"migration_audit hung:\n{out}\n{err}") from None
        return Result(child.returncode, out, err, child.pid)

    def base_entries(self) -> list[Path]:
        """Cache entries of base states (not the fresh cluster saved after initdb), whole."""
        return [p for p in self.cache_entries() if _manifest(p).get("migrations", 0) > 0]

    def fresh_entries(self) -> list[Path]:
        """Cache entries of fresh clusters (saved right after initdb), whole."""
        return [p for p in self.cache_entries() if _manifest(p).get("migrations") == 0]

    def cache_entries(self) -> list[Path]:
        if not self.cache.is_dir():
            return []
        return sorted(p for p in self.cache.iterdir() if (p / "manifest.json").is_file())

    def temporaries(self) -> list[Path]:
        """Cache entries being written (or left by a writer that died)."""
        if not self.cache.is_dir():
            return []
        return sorted(p for p in self.cache.iterdir() if p.name.startswith("."))

    def leftover_folders(self) -> list[Path]:
        return sorted(self.tmpdir.glob(TEMP_PREFIX + "*"))

    def cleanup(self) -> None:
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def scratch_databases(info: ConnectionInfo, pid: int | None = None) -> list[str]:
    """Scratch databases on the server (of the audit process ``pid`` when given)."""
    with info.connect(autocommit=True) as conn:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (PREFIX + "%",)
            )
        ]
    if pid is not None:
        names = [n for n in names if f"_{pid}_" in n]
    return names


def postgres_processes_under(folder: Path) -> list[int]:
    """Pids of live ``postgres`` processes whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and "postgres" in cmdline and str(folder) in cmdline:
            found.append(int(entry.name))
    return found


def small_filesystem(folder: Path, megabytes: int) -> tuple[list[str], str]:
    """A command prefix that runs a command with a ``megabytes`` tmpfs mounted on ``folder``.

    The mount lives in a private mount namespace (``unshare``): as root directly,
    otherwise in a user namespace whose root mounts it and then maps back to the
    calling user, so that PostgreSQL does not see itself running as root. Returns
    ``([], reason)`` when this machine allows neither.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return [], "unshare (util-linux) is not installed"
    mount = f'mount -t tmpfs -o size={megabytes}m,mode=755 tmpfs "$0" && exec "$@"'
    if os.geteuid() == 0:
        prefix = [unshare, "--mount", "--propagation", "private", "sh", "-c", mount, str(folder)]
    else:
        back = f'{unshare} --map-user={os.getuid()} --map-group={os.getgid()} "$@"'
        prefix = [
            unshare,
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            mount.replace('exec "$@"', f"exec {back}"),
            str(folder),
        ]
    probe = subprocess.run(
        [
            *prefix,
            "sh",
            "-c",
            'test "$(id -u)" = "$1" && df -k "$2" | tail -1',
            "sh",
            str(os.geteuid()),
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0 or "tmpfs" not in probe.stdout:
        why = (probe.stderr or probe.stdout).strip() or f"exit {probe.returncode}"
        return [], f"cannot mount a small tmpfs in a private namespace here: {why}"
    return prefix, ""


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# --- a cache entry's archive (what another pipeline could do to it) ------------------------


def entry_members(archive: Path) -> dict[str, tuple[int, int]]:
    """Each member of a cache entry's archive: name -> (offset of its data, size)."""
    with tarfile.open(archive) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers()}


def overwrite_member(archive: Path, name: str, data: bytes) -> None:
    """Replace the bytes of member ``name`` (same size: headers and manifest still match)."""
    offset, size = entry_members(archive)[name]
    assert len(data) == size, (len(data), size)
    with open(archive, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def plant_member(archive: Path, name: str, data: bytes) -> None:
    """Add member ``name`` with a header of the kind the cache writes, before the end
    marker, and keep the entry's manifest in step, so the entry looks whole."""
    from migration_guard.postgres import datadir

    body = archive.read_bytes()[: -2 * 512]
    member = datadir._header(name, size=len(data)) + data + b"\0" * (-len(data) % 512)
    archive.write_bytes(body + member + b"\0" * 1024)
    manifest = archive.parent / "manifest.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text())
        meta["bytes"] = archive.stat().st_size
        manifest.write_text(json.dumps(meta))


def _manifest(entry: Path) -> dict[str, Any]:
    try:
        data = json.loads((entry / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def project_fixture(tmp_path: Path, **kwargs: Any) -> Iterator[Project]:
    project = Project(tmp_path / "project", **kwargs)
    try:
        yield project
    finally:
        project.cleanup()
