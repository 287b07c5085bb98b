"""All or nothing (issue 12, item 4): the plan's files go in together and come out together.

The unit tests drive :class:`Staging` directly; ``test_interrupted`` in
``test_all_or_nothing.py`` interrupts the real command at each stage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_guard.planner.model import FileChange
from migration_guard.planner.staging import FOLDER, Staging, recover

#: A file whose bytes a text round trip would change (CRLF, a BOM, latin-1).
ODD = b"\xef\xbb\xbf# models\r\nname = 'caf\xe9'\r\n"


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "app"
    (root / "migrations").mkdir(parents=True)
    (root / "models.py").write_bytes(ODD)
    (root / "migrations" / "0001_initial.py").write_bytes(b"# initial\n")
    (root / "migrations" / "0002_hazard.py").write_bytes(b"# hazard\r\n")
    (root / "migrations" / "0003_after.py").write_bytes(b"dependencies = ['0002_hazard']\n")
    return root


def changes(root: Path) -> list[FileChange]:
    m = root / "migrations"
    return [
        FileChange(m / "0002_1_expand.py", None, "# expand\n", "migration"),
        FileChange(m / "0002_2_backfill.py", None, "# backfill\n", "migration"),
        FileChange(m / "0002_hazard.py", "# hazard\r\n", None, "replaced"),
        FileChange(m / "0003_after.py", "", "dependencies = ['0002_2_backfill']\n", "dependant"),
        FileChange(root / "models.py", "", "# models, edited\n", "models"),
        FileChange(m / "zero_downtime_plan.json", None, "{}\n", "record"),
    ]


def test_apply_then_restore_is_byte_for_byte(project):
    before = tree(project)
    staging = Staging.prepare(project / "migrations" / FOLDER, changes(project))
    assert tree(project) == {**before, **_staged(project, staging)}  # nothing touched yet
    staging.apply()
    applied = tree(project)
    assert applied["models.py"] == b"# models, edited\n"
    assert "migrations/0002_hazard.py" not in applied
    restored = staging.restore()
    assert tree(project) == before
    assert "models.py (put back)" in " ".join(restored)
    assert any("0002_1_expand.py (removed)" in line for line in restored)
    assert not (project / "migrations" / FOLDER).exists()


def _staged(root: Path, staging: Staging) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in staging.folder.rglob("*")
        if p.is_file()
    }


def test_commit_keeps_the_plan_and_forgets_the_originals(project):
    staging = Staging.prepare(project / "migrations" / FOLDER, changes(project))
    staging.apply()
    staging.commit()
    assert not (project / "migrations" / FOLDER).exists()
    assert (project / "migrations" / "0002_1_expand.py").read_text() == "# expand\n"


def test_a_killed_plan_is_restored_by_the_next_run(project):
    """SIGKILL leaves the staging folder: the next run puts everything back from it."""
    before = tree(project)
    staging = Staging.prepare(project / "migrations" / FOLDER, changes(project))
    staging.apply()
    (project / "migrations" / "0002_1_expand.py").write_text("# black reformatted it\n")
    del staging  # the process is gone
    restored = recover(project / "migrations" / FOLDER)
    assert tree(project) == before
    assert len(restored) == 6


def test_interrupted_while_staging_touches_nothing(project):
    before = tree(project)
    folder = project / "migrations" / FOLDER
    folder.mkdir()
    (folder / "original-0").write_bytes(b"half")  # no manifest: staging never finished
    assert recover(folder) == []
    assert tree(project) == before


def test_restore_is_not_cut_short_by_a_second_signal(project, monkeypatch):
    """Signals that arrive while files are put back wait for the restore to finish."""
    import os
    import signal

    staging = Staging.prepare(project / "migrations" / FOLDER, changes(project))
    staging.apply()
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    real = Path.read_bytes

    def read_bytes(self):
        if not seen and self.name.startswith("original-"):
            os.kill(os.getpid(), signal.SIGTERM)  # arrives in the middle of the restore
            assert not seen  # held back while the restore runs
        return real(self)

    try:
        monkeypatch.setattr(Path, "read_bytes", read_bytes)
        staging.restore()
        monkeypatch.undo()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert seen == [signal.SIGTERM]  # delivered once the restore was done
    assert (project / "models.py").read_bytes() == ODD
