"""All or nothing: a plan's files go into place together, and come out together.

Django can only verify migrations where its loader imports them (the app's
migrations package) and models where Python imports them, so a plan is
verified in place. What makes that safe is the staging folder, written before
any file of the project is touched:

``<app>/migrations/.zero_downtime_staging/``
    ``manifest.json``: every path the plan touches, and whether it existed;
    ``original-<n>``: the exact bytes of each file that existed;
    ``new-<n>``: the exact bytes the plan writes.

Then each file is moved into place (a temporary file next to it, then an atomic
rename). On success the folder goes. On any failure, exception or signal,
:meth:`Staging.restore` puts back every original byte for byte and removes every
file the plan added; cleanup is shielded from a second signal. If the process
dies without a chance to clean up (SIGKILL, power loss), the folder stays, and
the next ``plan_zero_downtime`` of that app restores from it before anything
else and says so. The folder's name starts with a dot: Django's migration loader
never reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..signals import shielded
from .model import FileChange

FOLDER = ".zero_downtime_staging"
MANIFEST = "manifest.json"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Staging:
    """The files of one plan, staged in ``folder`` before they go into place."""

    def __init__(self, folder: Path, root: Path | None = None) -> None:
        self.folder = folder
        self.root = root or Path.cwd()
        self.entries: list[dict[str, object]] = []
        self.applied = False

    # -- building -----------------------------------------------------------------------
    @classmethod
    def prepare(cls, folder: Path, changes: list[FileChange]) -> Staging:
        """Stage ``changes``: new contents and the original bytes; nothing else is touched."""
        if folder.exists():
            raise FileExistsError(f"{folder} exists: an earlier plan was interrupted")
        paths = [change.path.resolve() for change in changes]
        twice = sorted({str(p) for p in paths if paths.count(p) > 1})
        if twice:  # one change would undo the other
            raise ValueError(f"the plan changes {', '.join(twice)} twice")
        staging = cls(folder)
        folder.mkdir(parents=True)
        try:
            for number, change in enumerate(changes):
                path = change.path.resolve()
                entry: dict[str, object] = {"path": str(path), "existed": path.exists()}
                if path.exists():
                    (folder / f"original-{number}").write_bytes(path.read_bytes())
                    entry["original"] = f"original-{number}"
                if change.new is not None:
                    (folder / f"new-{number}").write_bytes(change.new.encode("utf-8"))
                    entry["new"] = f"new-{number}"
                staging.entries.append(entry)
            _write_atomic(folder / MANIFEST, json.dumps(staging.entries, indent=1).encode())
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return staging

    @classmethod
    def load(cls, folder: Path) -> Staging | None:
        """The staging an interrupted plan left behind (None: none, or not even prepared)."""
        manifest = folder / MANIFEST
        if not manifest.is_file():
            return None
        staging = cls(folder)
        staging.entries = list(json.loads(manifest.read_text(encoding="utf-8")))
        staging.applied = True
        return staging

    # -- moving ---------------------------------------------------------------------------
    def apply(self) -> None:
        """Move every staged file into place (and remove the files the plan removes)."""
        self.applied = True
        for entry in self.entries:
            path = Path(str(entry["path"]))
            if "new" in entry:
                _write_atomic(path, (self.folder / str(entry["new"])).read_bytes())
            elif path.exists():
                path.unlink()

    def restore(self) -> list[str]:
        """Every touched file as it was, byte for byte; what was done, one line per file."""
        done: list[str] = []
        with shielded():
            for entry in reversed(self.entries):
                path = Path(str(entry["path"]))
                if "original" in entry:
                    original = (self.folder / str(entry["original"])).read_bytes()
                    if not path.exists() or path.read_bytes() != original:
                        _write_atomic(path, original)
                        done.append(f"{self._rel(path)} (put back)")
                elif path.exists():
                    path.unlink()
                    done.append(f"{self._rel(path)} (removed)")
            shutil.rmtree(self.folder, ignore_errors=True)
        return list(reversed(done))

    def commit(self) -> None:
        """The plan stays: forget the originals."""
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def paths(self) -> list[Path]:
        return [Path(str(entry["path"])) for entry in self.entries]

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.as_posix()


def recover(folder: Path) -> list[str]:
    """Restore what an interrupted plan left in ``folder``; one line per file restored."""
    if not folder.exists():
        return []
    staging = Staging.load(folder)
    if staging is None:  # interrupted while staging: nothing had been touched
        shutil.rmtree(folder, ignore_errors=True)
        return []
    return staging.restore()
